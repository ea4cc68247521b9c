/**
 * The jupyter_interop JupyterLab extension: the page's hub connection and the shell around it
 * (docs/LAB.md).
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';

import { HubClient, IHubClient } from './hub';
import { sidebarPlugin } from './sidebar';

export * from './hub';

/** The page's one connection to the interop hub, for every other part of the shell. */
const hubPlugin: JupyterFrontEndPlugin<HubClient> = {
  id: 'jupyter_interop:hub',
  description: 'Connects the JupyterLab page to the interop hub as a GW3 peer.',
  autoStart: true,
  provides: IHubClient,
  activate: (_app: JupyterFrontEnd): HubClient => {
    const token = PageConfig.getToken();
    return new HubClient({ baseUrl: PageConfig.getBaseUrl(), token: token || undefined });
  }
};

export default [hubPlugin, sidebarPlugin];
