// The planner in a Web Worker: Comlink.expose of the same API Node imports, and nothing else.
import * as Comlink from 'comlink';
import { plannerApi } from './api.ts';

Comlink.expose(plannerApi);
