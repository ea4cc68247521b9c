/** The Interop commands of the palette, Help menu and Launcher. */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { InputDialog, Notification } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { launchIcon } from '@jupyterlab/ui-components';

import { HubClient } from './hub';
import { NotebookChannels } from './notebookChannel';

export const CommandIds = {
  joinChannel: 'interop:join-channel',
  leaveChannel: 'interop:leave-channel',
  openSidebar: 'interop:open-sidebar',
  openDashboard: 'interop:open-dashboard'
} as const;

/** The id of the Interop sidebar widget (labextension/src/sidebar/). */
export const SIDEBAR_ID = 'jp-interop-sidebar';

export const COMMAND_CATEGORY = 'Interop';

export function addCommands(
  app: JupyterFrontEnd,
  hub: HubClient,
  tracker: INotebookTracker,
  channels: NotebookChannels,
  dashboardUrl: string
): void {
  const current = () => {
    const panel = tracker.currentWidget;
    return panel ? channels.forPanel(panel) : null;
  };
  const canChange = () => {
    const controller = current();
    return controller !== null && !controller.unavailableReason;
  };

  app.commands.addCommand(CommandIds.joinChannel, {
    label: 'Join channel…',
    caption: "Put the current notebook's kernel on an interop channel",
    isEnabled: canChange,
    execute: async () => {
      const controller = current();
      if (!controller) {
        return;
      }
      const names = hub.channels().map(c => c.name);
      if (names.length === 0) {
        Notification.warning('The interop hub has no channels');
        return;
      }
      const result = await InputDialog.getItem({
        title: 'Join channel',
        label: `Channel for ${controller.panel.title.label}`,
        items: names,
        current: controller.channel ?? names[0]
      });
      if (result.button.accept && result.value) {
        await controller.join(result.value);
      }
    }
  });

  app.commands.addCommand(CommandIds.leaveChannel, {
    label: 'Leave channel',
    caption: "Take the current notebook's kernel off its interop channel",
    isEnabled: () => canChange() && current()?.channel !== null,
    execute: async () => {
      await current()?.join(null);
    }
  });

  app.commands.addCommand(CommandIds.openSidebar, {
    label: 'Open Interop sidebar',
    caption: 'Peers, methods, streams, contexts and channels of the interop hub',
    execute: () => {
      app.shell.activateById(SIDEBAR_ID);
    }
  });

  app.commands.addCommand(CommandIds.openDashboard, {
    label: 'Open interop dashboard',
    caption: 'The hub dashboard in a new browser tab',
    icon: launchIcon,
    execute: () => {
      window.open(dashboardUrl, '_blank', 'noopener');
    }
  });
}
