/**
 * The GW3 operations the sidebar performs, on top of the lab's one hub connection
 * (`HubClient.request` / `send` / `messageReceived`): invoking methods, previewing streams,
 * following and editing one context. Message shapes are the hub's (jupyter_interop/hub/agm.py,
 * jupyter_interop/hub/contexts.py); the REST views it reads are jupyter_interop/hub/views.py.
 */

import { HubClient, GW3Message } from '../hub';

/** A method or stream offered by one server, as the hub's `methods`/`streams` views list it. */
export interface MethodOffer {
  server_id: string;
  application: string | null;
  instance: string | null;
  id: string;
  name: string;
  display_name: string | null;
  description: string | null;
  accepts: string | null;
  returns: string | null;
  flags: Record<string, unknown> | null;
}

/** A stream offer with its subscription counts (the `streams` view). */
export interface StreamOffer extends MethodOffer {
  branches: Record<string, number>;
  subscribers: number;
  pending: number;
}

/** One context as the hub's `contexts` view lists it. */
export interface ContextSummary {
  name: string;
  context_id: string;
  lifetime: string;
  version: number;
  updated_at: number;
  updater_id: string | null;
  creator_id: string | null;
  members: string[];
  keys: string[];
}

/** One context's full state, from a `subscribed-context` snapshot. */
export interface ContextSnapshot {
  contextId: string;
  name: string;
  data: Record<string, unknown>;
  version: number | null;
  updaterId: string | null;
  updatedAt: number | null;
}

/** What one invocation of one server gave. */
export interface InvokeOutcome {
  serverId: string;
  application: string | null;
  ok: boolean;
  result?: unknown;
  reason?: string;
  reasonUri?: string;
}

/** Prefix of the hub's channel contexts: they are shown as channels, not as contexts. */
export const CHANNEL_CONTEXT_PREFIX = '___channel___';

/** How long an invocation may take before the sidebar stops waiting (the hub never times out). */
export const INVOKE_TIMEOUT_MS = 30_000;

/** Parse `text` as a JSON object; the error message says what is wrong, for inline display. */
export function parseJsonObject(
  text: string,
  what: string
): { value: Record<string, unknown> } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(text.trim() === '' ? '{}' : text);
  } catch (err) {
    return { error: `${what} is not valid JSON: ${(err as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
    return { error: `${what} must be a JSON object ({...}), not ${kind}` };
  }
  return { value: value as Record<string, unknown> };
}

function reasonOf(err: unknown): { reason: string; reasonUri?: string } {
  const e = err as { reason?: unknown; reason_uri?: unknown; message?: unknown };
  const reason =
    typeof e?.reason === 'string' && e.reason
      ? e.reason
      : typeof e?.message === 'string'
        ? e.message
        : String(err);
  return {
    reason,
    reasonUri: typeof e?.reason_uri === 'string' ? e.reason_uri : undefined
  };
}

/**
 * The sidebar's operations on the hub; one instance per sidebar. The lab's connection has
 * joined the agm domain (src/hub.ts), which calls and subscriptions need.
 */
export class HubOps {
  constructor(readonly hub: HubClient) {}

  /** Call one server's method with named arguments; never rejects (the outcome says). */
  async invokeOne(offer: MethodOffer, args: Record<string, unknown>): Promise<InvokeOutcome> {
    const base = { serverId: offer.server_id, application: offer.application };
    try {
      const reply = await this.hub.request(
        {
          domain: 'agm',
          type: 'call',
          server_id: offer.server_id,
          method_id: offer.id,
          arguments_kv: args,
          context: {}
        },
        INVOKE_TIMEOUT_MS
      );
      if (reply.type === 'error') {
        return { ...base, ok: false, ...reasonOf(reply) };
      }
      return { ...base, ok: true, result: reply.result };
    } catch (err) {
      return { ...base, ok: false, ...reasonOf(err) };
    }
  }

  /** Subscribe to one server's stream; resolves with the subscription id once accepted. */
  async subscribeStream(offer: StreamOffer, args: Record<string, unknown>): Promise<string> {
    const reply = await this.hub.request(
      {
        domain: 'agm',
        type: 'subscribe',
        server_id: offer.server_id,
        method_id: offer.id,
        arguments_kv: args,
        flags: {},
        context: {}
      },
      INVOKE_TIMEOUT_MS
    );
    if (typeof reply.subscription_id !== 'string') {
      throw new Error(reasonOf(reply).reason || 'the hub did not accept the subscription');
    }
    return reply.subscription_id;
  }

  /** End a stream subscription (the hub then tells the publisher: `remove-interest`). */
  async unsubscribeStream(subscriptionId: string): Promise<void> {
    await this.hub.request({
      domain: 'agm',
      type: 'unsubscribe',
      subscription_id: subscriptionId,
      reason_uri: '',
      reason: 'Preview closed in the Interop sidebar'
    });
  }

  /** Follow a context: the hub answers with a full snapshot, then pushes `context-updated`. */
  async subscribeContext(contextId: string): Promise<ContextSnapshot> {
    const reply = await this.hub.request({
      domain: 'global',
      type: 'subscribe-context',
      context_id: contextId
    });
    return snapshotOf(reply);
  }

  async unsubscribeContext(contextId: string): Promise<void> {
    await this.hub.request({
      domain: 'global',
      type: 'unsubscribe-context',
      context_id: contextId
    });
  }

  /**
   * Write a context: `replace` sets the whole data, `update` replaces the given top-level keys
   * and removes those whose value is null (io.Connect's `contexts.update`). Resolves with the
   * new version when the hub reports it.
   */
  async writeContext(
    contextId: string,
    data: Record<string, unknown>,
    mode: 'replace' | 'update'
  ): Promise<number | null> {
    let delta: GW3Message;
    if (mode === 'replace') {
      delta = { reset: data };
    } else {
      const added: Record<string, unknown> = {};
      const removed: string[] = [];
      for (const [key, value] of Object.entries(data)) {
        if (value === null) {
          removed.push(key);
        } else {
          added[key] = value;
        }
      }
      delta = removed.length ? { added, removed } : { added };
    }
    const reply = await this.hub.request({
      domain: 'global',
      type: 'update-context',
      context_id: contextId,
      delta
    });
    return typeof reply.version === 'number' ? reply.version : null;
  }

}

function snapshotOf(reply: GW3Message): ContextSnapshot {
  const data = reply.data;
  return {
    contextId: String(reply.context_id),
    name: typeof reply.name === 'string' ? reply.name : '',
    data: data && typeof data === 'object' && !Array.isArray(data) ? data : {},
    version: typeof reply.version === 'number' ? reply.version : null,
    updaterId: typeof reply.updater_id === 'string' ? reply.updater_id : null,
    updatedAt: typeof reply.updated_at === 'number' ? reply.updated_at : null
  };
}
