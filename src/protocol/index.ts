export * from './common';
export * from './resources';
export * from './node';
export * from './job';
export * from './placement';
export * from './subjects';
export * from './messages';
export * from './api';
