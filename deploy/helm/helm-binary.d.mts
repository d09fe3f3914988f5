// Types of helm-binary.mjs, for the tests that import it.
export declare const HELM_VERSION: string;
/** Path of a helm binary, fetching and caching the pinned one on first use. Throws with the reason. */
export declare function helmBinary(): string;
