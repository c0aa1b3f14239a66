export * from './common';
export * from './resources';
export * from './node';
export * from './job';
