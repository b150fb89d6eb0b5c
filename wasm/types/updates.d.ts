/** An Error thrown for malformed input; `code` is stable (see core/include/tp/yjs/README.md). */
export interface UpdateError extends Error {
  code: string;
}

export interface UpdateInfo {
  structs: number;
  clients: number;
  deleteRanges: number;
  empty: boolean;
}

export declare function mergeUpdates(updates: Uint8Array[]): Uint8Array;
export declare function mergeUpdatesV2(updates: Uint8Array[]): Uint8Array;
/** `stateVector` defaults to the empty state vector (everything is missing). */
export declare function diffUpdate(update: Uint8Array, stateVector?: Uint8Array): Uint8Array;
export declare function diffUpdateV2(update: Uint8Array, stateVector?: Uint8Array): Uint8Array;
export declare function encodeStateVectorFromUpdate(update: Uint8Array): Uint8Array;
export declare function encodeStateVectorFromUpdateV2(update: Uint8Array): Uint8Array;
export declare function convertUpdateFormatV1ToV2(update: Uint8Array): Uint8Array;
export declare function convertUpdateFormatV2ToV1(update: Uint8Array): Uint8Array;
/** Strict validity check; throws an UpdateError when the update is malformed. */
export declare function validateUpdate(update: Uint8Array): UpdateInfo;
export declare function validateUpdateV2(update: Uint8Array): UpdateInfo;
/** Non-throwing validity check (version 2 by default). */
export declare function checkUpdate(
  update: Uint8Array,
  version?: 1 | 2,
): ({ valid: true } & UpdateInfo) | { valid: false; code: string; message: string };
