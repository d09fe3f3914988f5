// Types of render.mjs, for the tests that import it.
export declare const CHART_DIR: string;
export declare const MANIFESTS_DIR: string;
export declare const DASHBOARD_JSON: string;
export declare const CHART_DASHBOARD_JSON: string;
export declare const RELEASE: string;
/** `helm template` of the chart with extra arguments (e.g. `-f values.yaml`); the YAML text. */
export declare function renderChart(helm: string, args?: string[]): string;
/** The rendered text split by template file name. */
export declare function splitBySource(text: string): Record<string, string>;
/** The manifest files as they should be, from the chart with its defaults. */
export declare function expectedManifests(helm: string): Record<string, string>;
