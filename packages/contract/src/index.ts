export * from './errors.js';
export * from './names.js';
export * from './satellite.js';
export * from './operator.js';
