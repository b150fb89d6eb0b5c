/** The raw embind module. Internal: prefer the typed entry points. */
export declare const core: Record<string, any>;
export declare function asBytes(value: ArrayBuffer | ArrayBufferView, what?: string): Uint8Array;
