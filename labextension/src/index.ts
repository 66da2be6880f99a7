/**
 * dspex-jupyter's JupyterLab extension: the "DSPex" sidebar panel, following
 * the active notebook's kernel over the 'dspex:panel' comm.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { DSPexPanel } from './panel';

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">' +
  '<g class="jp-icon3" fill="#616161">' +
  '<path d="M2 2h5.2c3.3 0 5.3 2.3 5.3 6s-2 6-5.3 6H2V2zm2.2 2v8h2.9c2 0 3.1-1.5 3.1-4s-1.1-4-3.1-4H4.2z"/>' +
  '<circle cx="13.6" cy="3" r="1.6"/></g></svg>';

export const dspexIcon = new LabIcon({ name: 'dspex-jupyter:icon', svgstr: ICON_SVG });

export const COMMAND_OPEN = 'dspex:open-panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'dspex-jupyter:panel',
  description: "A sidebar panel showing the active kernel's dspex context, live.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const panel = new DSPexPanel();
    panel.title.icon = dspexIcon;
    app.shell.add(panel, 'right', { rank: 600 });
    restorer?.add(panel, 'dspex-panel');

    const follow = () => panel.setNotebook(tracker.currentWidget);
    tracker.currentChanged.connect(follow);
    void app.restored.then(follow);
    follow();

    app.commands.addCommand(COMMAND_OPEN, {
      label: 'Show the DSPex panel',
      execute: () => app.shell.activateById(panel.id)
    });
    palette?.addItem({ command: COMMAND_OPEN, category: 'DSPex' });
  }
};

export default plugin;
