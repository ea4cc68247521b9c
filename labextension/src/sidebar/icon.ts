/** The Interop sidebar's icon: three linked nodes, drawn in the theme's icon colour. */

import { LabIcon } from '@jupyterlab/ui-components';

const SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="6" cy="6" r="3"/>
    <circle cx="18" cy="6" r="3"/>
    <circle cx="12" cy="18" r="3"/>
    <path d="M7.6 7.9l3.3 7 1.8-.8-3.3-7zM16.4 7.9l-3.3 7-1.8-.8 3.3-7zM8.5 5h7v2h-7z"/>
  </g>
</svg>`;

export const interopIcon = new LabIcon({ name: 'jupyter_interop:sidebar', svgstr: SVG });
