#!/usr/bin/env node
// The qy command: runs the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';
register();
await import('../cli/qy.ts');
