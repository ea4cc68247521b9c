/**
 * The jupyter_interop JupyterLab extension: the page's hub connection and the shell around it
 * (docs/LAB.md).
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { ILauncher } from '@jupyterlab/launcher';
import { IMainMenu } from '@jupyterlab/mainmenu';
import { INotebookModel, INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';
import { IDisposable } from '@lumino/disposable';

import { ChannelChip, TabMarks } from './chip';
import { addCommands, COMMAND_CATEGORY, CommandIds } from './commands';
import { HubClient, IHubClient } from './hub';
import { NotebookChannels } from './notebookChannel';
import { sidebarPlugin } from './sidebar';
import { InteropStatus } from './status';

export * from './hub';

/** The page's one connection to the interop hub, for every other part of the shell. */
const hubPlugin: JupyterFrontEndPlugin<HubClient> = {
  id: 'jupyter_interop:hub',
  description: 'Connects the JupyterLab page to the interop hub as a GW3 peer.',
  autoStart: true,
  provides: IHubClient,
  activate: (): HubClient => {
    const token = PageConfig.getToken();
    return new HubClient({ baseUrl: PageConfig.getBaseUrl(), token: token || undefined });
  }
};

/** Adds the channel chip to every notebook's toolbar. */
class ChipExtension implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  constructor(
    private readonly _channels: NotebookChannels,
    private readonly _marks: TabMarks
  ) {}

  createNew(panel: NotebookPanel): IDisposable {
    const chip = new ChannelChip(this._channels.forPanel(panel), this._marks);
    panel.toolbar.insertItem(10, 'interopChannel', chip);
    return chip;
  }
}

/** The channel chip, the status bar item and the Interop commands. */
const shellPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter_interop:shell',
  description: 'Channel chip on notebooks, interop status and commands.',
  autoStart: true,
  requires: [IHubClient, INotebookTracker],
  optional: [ICommandPalette, IStatusBar, IMainMenu, ILauncher],
  activate: (
    app: JupyterFrontEnd,
    hub: HubClient,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    statusBar: IStatusBar | null,
    mainMenu: IMainMenu | null,
    launcher: ILauncher | null
  ): void => {
    const channels = new NotebookChannels(hub);
    const marks = new TabMarks(hub);
    app.docRegistry.addWidgetExtension('Notebook', new ChipExtension(channels, marks));
    const dashboardUrl = URLExt.join(PageConfig.getBaseUrl(), 'interop/');
    addCommands(app, hub, tracker, channels, dashboardUrl);
    // the commands' enabled state follows the current notebook and the hub
    const refresh = () => app.commands.notifyCommandChanged();
    tracker.currentChanged.connect(refresh);
    hub.modelChanged.connect(refresh);
    hub.stateChanged.connect(refresh);

    if (palette) {
      for (const command of Object.values(CommandIds)) {
        palette.addItem({ command, category: COMMAND_CATEGORY });
      }
    }
    if (statusBar) {
      statusBar.registerStatusItem('jupyter_interop:status', {
        item: new InteropStatus(hub, () => {
          void app.commands.execute(CommandIds.openSidebar);
        }),
        align: 'left',
        rank: 50
      });
    }
    if (mainMenu) {
      mainMenu.helpMenu.addGroup([{ command: CommandIds.openDashboard }], 5);
    }
    if (launcher) {
      launcher.add({ command: CommandIds.openDashboard, category: COMMAND_CATEGORY, rank: 1 });
    }
  }
};

export default [hubPlugin, shellPlugin, sidebarPlugin];
