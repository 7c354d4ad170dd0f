import { InjectionToken } from '@angular/core';

import type { AppConfig } from './auth';

/** The `/config.json` the app was started with. */
export const APP_CONFIG = new InjectionToken<AppConfig>('APP_CONFIG');
