#!/bin/sh
# README.md, "Try it": from the clone, while `npm start` runs the broker in another terminal
# (`npm link` puts `ferry` on the PATH; FERRY_URL=ferry://host:port names another broker).
set -e

bin/ferry.js topics create orders --durability always
bin/ferry.js pub orders hello
bin/ferry.js sub orders --from earliest --count 1     # prints: hello
