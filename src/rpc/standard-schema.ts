/**
 * The Standard Schema interface (version 1), written out here so that no validation library is a
 * dependency: zod, valibot, arktype and Warren's own `s` builders all have a `~standard` property
 * of this shape, and any of them can describe a method's arguments or result.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaV1.Props<Input, Output>;
}

// A namespace only for types, mirroring the published interface so that user code written
// against it reads the same here.
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace StandardSchemaV1 {
  interface Props<Input = unknown, Output = Input> {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (
      value: unknown,
      options?: Options,
    ) => Result<Output> | Promise<Result<Output>>;
    readonly types?: Types<Input, Output> | undefined;
  }
  interface Options {
    readonly libraryOptions?: Record<string, unknown> | undefined;
  }
  type Result<Output> = SuccessResult<Output> | FailureResult;
  interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined;
  }
  interface PathSegment {
    readonly key: PropertyKey;
  }
  interface Types<Input = unknown, Output = Input> {
    readonly input: Input;
    readonly output: Output;
  }
  type InferInput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['input'];
  type InferOutput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['output'];
}

/** Any Standard Schema. */
export type AnySchema = StandardSchemaV1<any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What a schema accepts (the sender's type). */
export type InputOf<S> = S extends StandardSchemaV1<infer I, unknown> ? I : never;
/** What a schema produces (the receiver's type). */
export type OutputOf<S> = S extends StandardSchemaV1<unknown, infer O> ? O : never;

export function isStandardSchema(x: unknown): x is AnySchema {
  if ((typeof x !== 'object' && typeof x !== 'function') || x === null) return false;
  const p = (x as { '~standard'?: { version?: unknown; validate?: unknown } })['~standard'];
  return typeof p === 'object' && p !== null && p.version === 1 && typeof p.validate === 'function';
}
