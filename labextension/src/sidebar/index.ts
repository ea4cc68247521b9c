/**
 * The Interop sidebar plugin: live views of the hub's peers, methods, streams, contexts and
 * channels, and the server's app directory, in JupyterLab's left area (docs/LAB.md, "The
 * Interop sidebar").
 */

import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import { IHubClient, HubClient } from '../hub';
import { interopIcon } from './icon';
import { InteropSidebar } from './panel';

export { InteropSidebar, SIDEBAR_ID } from './panel';

/** Rank in the left area: below JupyterLab's own panels. */
const SIDEBAR_RANK = 800;

export const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter_interop:sidebar',
  description: 'The Interop sidebar: live peers, apps, methods, streams, contexts and channels.',
  autoStart: true,
  requires: [IHubClient],
  optional: [ILabShell],
  activate: (
    app: JupyterFrontEnd,
    hub: HubClient,
    labShell: ILabShell | null
  ): void => {
    const sidebar = new InteropSidebar(hub);
    sidebar.title.icon = interopIcon;
    sidebar.title.caption = 'Interop';
    // styled only with JupyterLab's --jp-* variables, so it follows the light and dark themes
    if (labShell) {
      labShell.add(sidebar, 'left', { rank: SIDEBAR_RANK });
    } else {
      app.shell.add(sidebar, 'left', { rank: SIDEBAR_RANK });
    }
  }
};
