/**
 * Serves the web dashboard: plain HTML, CSS and JavaScript modules from src/admin/dashboard/
 * (copied next to the compiled module by `npm run build`, scripts/copy-dashboard.mjs), so the same
 * relative path works under tsx and from dist/. No build step, no framework.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpProblem, type RawHandler } from './http.js';

export const DASHBOARD_DIR = fileURLToPath(new URL('./dashboard/', import.meta.url));
/** Where the dashboard's files are served from: `/ui/app.js` is dashboard/app.js. */
export const ASSET_PREFIX = '/ui';

const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};
/** Plain names only, one directory level: nothing can climb out of the dashboard directory. */
const ASSET_PATH = /^\/ui\/((?:[a-z0-9-]+\/)?[a-z0-9-]+\.(html|js|css|svg))$/;
/** Scripts only from this origin, and no framing: the dashboard drives an admin API. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** `/` → index.html; `/ui/<file>` → that file. */
export function dashboardHandler(dir: string = DASHBOARD_DIR): RawHandler {
  return async (req, res, url) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpProblem(405, `${req.method} is not allowed on ${url.pathname}`);
    let file: string;
    let type: string;
    if (url.pathname === '/' || url.pathname === '/index.html') {
      file = 'index.html';
      type = CONTENT_TYPES['html']!;
    } else if (url.pathname === '/favicon.ico') {
      // Browsers ask for it whatever the page declares.
      file = 'logo.svg';
      type = CONTENT_TYPES['svg']!;
    } else {
      const match = ASSET_PATH.exec(url.pathname);
      if (match === null) throw new HttpProblem(404, `no endpoint ${req.method} ${url.pathname} (GET /api lists the API's routes)`);
      file = match[1]!;
      type = CONTENT_TYPES[match[2]!]!;
    }
    let body: Buffer;
    try {
      body = await readFile(join(dir, file));
    } catch {
      throw new HttpProblem(404, `no dashboard file ${file}`);
    }
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-cache', ...SECURITY_HEADERS });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
