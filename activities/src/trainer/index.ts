// The trainer side of a worker: the control socket and checkpoint staging. Not activities
// themselves (the worker registers every export of src/index.ts as one), but what they use.
export * from './control-server.ts';
export * from './gpu-slots.ts';
export * from './launch.ts';
export * from './messages.ts';
export * from './session.ts';
export * from './staging.ts';
