export { AmqpError, amqpErrors } from './amqp-error.js';
export { Reader } from './reader.js';
export { Writer } from './writer.js';
export { FrameParser } from './frame-parser.js';
export type { FrameHandler } from './frame-parser.js';
export {
  FieldType,
  Decimal,
  TypedValue,
  decodeFieldTable,
  decodeFieldTablePreservingTypes,
  withPreservedTypes,
  encodeFieldTable,
} from './field-table.js';
export type { FieldTable, FieldValue } from './field-table.js';
export * from './generated/constants.js';
export * from './generated/methods.js';
export * from './generated/properties.js';
export * from './frames.js';
