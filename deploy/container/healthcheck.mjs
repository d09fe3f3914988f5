#!/usr/bin/env node
// The container's HEALTHCHECK: GET /healthz on the broker's admin port, from inside the container,
// without curl in the image. Exit 0 when it answers 200, 1 otherwise (Docker's contract).
//
// The URL is FERRY_HEALTHCHECK_URL when set, else http://127.0.0.1:$FERRY_HTTP_PORT/healthz (port
// 7780 by default). When the admin port serves TLS (tls.cert set and http.tls on) set
// FERRY_HEALTHCHECK_URL=https://127.0.0.1:7780/healthz: the certificate is not checked, since
// this asks the broker in its own container whether it is alive, not who it is.
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';

/** Docker's own --timeout kills a hung check; this ends it a little earlier with a reason. */
const TIMEOUT_MS = 2_500;
const DEFAULT_HTTP_PORT = 7780;

const url = new URL(process.env.FERRY_HEALTHCHECK_URL || `http://127.0.0.1:${process.env.FERRY_HTTP_PORT || DEFAULT_HTTP_PORT}/healthz`);
const get = url.protocol === 'https:' ? httpsGet : httpGet;
const request = get(url, { timeout: TIMEOUT_MS, rejectUnauthorized: false }, (response) => {
  response.resume();
  if (response.statusCode === 200) process.exit(0);
  console.error(`${url.href}: HTTP ${response.statusCode}`);
  process.exit(1);
});
request.on('timeout', () => request.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
request.on('error', (error) => {
  console.error(`${url.href}: ${error.message}`);
  process.exit(1);
});
