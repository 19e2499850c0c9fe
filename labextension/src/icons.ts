import { LabIcon } from '@jupyterlab/ui-components';

/** A shield: the budget panel's tab and the admin panel's launcher card. */
export const shieldIcon = new LabIcon({
  name: 'jupyter-secure:shield',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">' +
    '<path class="jp-icon3" fill="#616161" d="M12 2 4 5v6c0 5 3.4 9.7 8 11 4.6-1.3 8-6 8-11V5l-8-3zm0 2.2 6 2.25V11c0 ' +
    '3.9-2.5 7.6-6 8.9V4.2z"/></svg>'
});

/** A gauge: the budget panel. */
export const budgetIcon = new LabIcon({
  name: 'jupyter-secure:budget',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">' +
    '<path class="jp-icon3" fill="#616161" d="M12 4a10 10 0 0 0-10 10c0 1.8.5 3.5 1.3 5h17.4A10 10 0 0 0 12 4zm0 ' +
    '2a8 8 0 0 1 7.9 11H4.1A8 8 0 0 1 12 6zm3.6 2.9-4.3 4.4a1.5 1.5 0 1 0 1.4 1.4l4.4-4.3-1.5-1.5z"/></svg>'
});
