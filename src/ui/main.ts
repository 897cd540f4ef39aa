// Page entry: mounts the Shoal UI.
const app = document.getElementById('app');
if (app) app.textContent = 'Shoal';
