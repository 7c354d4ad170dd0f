import { provideZonelessChangeDetection } from '@angular/core';
import { bootstrapApplication } from '@angular/platform-browser';

import { App } from './app/app';
import { APP_CONFIG } from './app/app-config';
import { loadConfig } from './app/auth';

// Zoneless change detection is what lets the Angular CLI bundle the package's `.wasm` files:
// its WebAssembly ES module integration needs native async/await and top-level await, which
// Zone.js applications cannot have.
loadConfig()
  .then((config) =>
    bootstrapApplication(App, {
      providers: [provideZonelessChangeDetection(), { provide: APP_CONFIG, useValue: config }],
    }),
  )
  .catch((error: unknown) => {
    document.body.textContent = `Cannot start: ${String(error)}`;
  });
