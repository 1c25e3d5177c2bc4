#!/usr/bin/env node
// check_js_client.js -- checks the Eureka double against the real third-party eureka-js-client.
//
// usage: node check_js_client.js http://127.0.0.1:PORT
// Starts nothing itself: the double must already listen at that URL (run_js_check.sh starts
// one). Exits 0 when every check passed, 1 with a message otherwise.
'use strict';

const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const { Eureka } = require('eureka-js-client');

const base = process.argv[2];
if (!base || !/^http:\/\/[^/]+$/.test(base)) {
  console.error('usage: node check_js_client.js http://HOST:PORT');
  process.exit(2);
}
const target = new URL(base);
const APP = 'jscheck'; // lower case on purpose: Eureka upper-cases application names
const APP_UP = APP.toUpperCase();
const ID = `js-${process.pid}`;
const CLIENT_VERSION = require('eureka-js-client/package.json').version;

let passed = 0;
const clients = [];

// The client reads eureka-client.yml from its cwd: give it an empty directory.
const emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'eureka-js-check-'));

// A logger that keeps the client's lines and shows them only when a check fails.
const clientLog = [];
const logger = {};
for (const level of ['debug', 'info', 'warn', 'error']) {
  logger[level] = (...args) => {
    clientLog.push(`${level}: ${args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ')}`);
    if (clientLog.length > 200) clientLog.shift();
  };
}

function pass(desc) {
  passed += 1;
  console.log(`ok   - ${desc}`);
}

function check(desc, cond, detail) {
  if (!cond) {
    throw new Error(`${desc}${detail === undefined ? '' : `: ${detail}`}`);
  }
  pass(desc);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Poll fn (async) until it returns a truthy value; fail after timeoutMs.
async function waitFor(desc, fn, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) {
      pass(desc);
      return v;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${desc}`);
    await sleep(50);
  }
}

// A raw HTTP request to the double; resolves {status, body, json}.
function raw(method, urlPath, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: target.hostname, port: target.port, method, path: urlPath, headers },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          data += c;
        });
        res.on('end', () => {
          let json;
          try {
            json = data ? JSON.parse(data) : undefined;
          } catch (e) {
            json = undefined;
          }
          resolve({ status: res.statusCode, body: data, json });
        });
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function getInstance(id = ID) {
  return raw('GET', `/eureka/apps/${APP_UP}/${id}`, { Accept: 'application/json' });
}

async function requestLog() {
  const r = await raw('GET', '/_double/log');
  if (r.status !== 200 || !Array.isArray(r.json)) throw new Error(`GET /_double/log answered ${r.status}`);
  return r.json;
}

function heartbeats(log, id = ID) {
  return log.filter((e) => e.method === 'PUT' && e.path === `/eureka/apps/${APP}/${id}`);
}

function makeClient(overrides) {
  const config = {
    cwd: emptyDir,
    logger,
    instance: {
      app: APP,
      instanceId: ID,
      hostName: '127.0.0.1',
      ipAddr: '127.0.0.1',
      port: { $: 18080, '@enabled': true },
      vipAddress: APP,
      statusPageUrl: 'http://127.0.0.1:18080/info',
      dataCenterInfo: {
        '@class': 'com.netflix.appinfo.InstanceInfo$MyDataCenterInfo',
        name: 'MyOwn',
      },
    },
    eureka: {
      host: target.hostname,
      port: Number(target.port),
      servicePath: '/eureka/apps/',
      heartbeatInterval: 200,
      registryFetchInterval: 60000, // fetched explicitly below
      maxRetries: 0,
    },
  };
  const merged = {
    ...config,
    ...overrides,
    instance: { ...config.instance, ...(overrides.instance || {}) },
    eureka: { ...config.eureka, ...(overrides.eureka || {}) },
  };
  const client = new Eureka(merged);
  clients.push(client);
  return client;
}

function call(client, method) {
  return new Promise((resolve, reject) => {
    client[method]((err) => (err ? reject(err) : resolve()));
  });
}

function listed(client, id = ID) {
  return client.getInstancesByAppId(APP).filter((i) => i.instanceId === id);
}

async function main() {
  console.log(`# eureka-js-client ${CLIENT_VERSION} against ${base}`);
  await raw('DELETE', '/_double/log');

  // --- register, heartbeat, fetch -----------------------------------------------------------
  const client = makeClient({});
  await call(client, 'start');
  pass('client.start(): registered and fetched the registry');

  let log = await requestLog();
  const posts = log.filter((e) => e.method === 'POST');
  check('the client registered once with POST /eureka/apps/jscheck', posts.length === 1 && posts[0].path === `/eureka/apps/${APP}`, JSON.stringify(posts));
  check('the registration was answered 204', posts[0].status === 204, posts[0].status);
  check('the registration was sent as application/json', /application\/json/.test(posts[0].headers['content-type'] || ''), posts[0].headers['content-type']);

  let r = await getInstance();
  check('GET /eureka/apps/JSCHECK/{id} finds the instance', r.status === 200, r.status);
  check('the double upper-cased the app name', r.json.instance.app === APP_UP, r.json.instance.app);
  check('the instance is UP', r.json.instance.status === 'UP', r.json.instance.status);
  check('the instance kept its port', r.json.instance.port.$ === 18080 && r.json.instance.port['@enabled'] === 'true', JSON.stringify(r.json.instance.port));

  await waitFor('the client sent at least 3 heartbeats', async () => heartbeats(await requestLog()).length >= 3);
  log = await requestLog();
  check('every heartbeat was answered 200', heartbeats(log).every((e) => e.status === 200), JSON.stringify(heartbeats(log).map((e) => e.status)));

  let mine = listed(client);
  check('the client\'s registry lists itself', mine.length === 1, JSON.stringify(client.getInstancesByAppId(APP)));
  check('the client\'s registry shows itself UP', mine[0].status === 'UP', mine[0].status);
  check('the client also finds itself by VIP address', client.getInstancesByVipAddress(APP).some((i) => i.instanceId === ID));

  // An observer that does not filter, to tell "filtered out" from "missing".
  const observer = makeClient({ eureka: { registerWithEureka: false, filterUpInstances: false } });
  await call(observer, 'start');

  // --- OUT_OF_SERVICE through a raw status override -------------------------------------------
  r = await raw('PUT', `/eureka/apps/${APP_UP}/${ID}/status?value=OUT_OF_SERVICE`);
  check('PUT .../status?value=OUT_OF_SERVICE answered 200', r.status === 200, r.status);
  r = await getInstance();
  check('the instance is OUT_OF_SERVICE', r.json.instance.status === 'OUT_OF_SERVICE', r.json.instance.status);

  await call(client, 'fetchRegistry');
  check('with filterUpInstances the client no longer lists itself', listed(client).length === 0, JSON.stringify(listed(client)));
  check('nor by VIP address', !client.getInstancesByVipAddress(APP).some((i) => i.instanceId === ID));
  await call(observer, 'fetchRegistry');
  mine = listed(observer);
  check('an unfiltered client lists it as OUT_OF_SERVICE', mine.length === 1 && mine[0].status === 'OUT_OF_SERVICE', JSON.stringify(mine));
  check('with overriddenStatus OUT_OF_SERVICE', mine[0].overriddenStatus === 'OUT_OF_SERVICE', mine[0].overriddenStatus);

  const before = heartbeats(await requestLog()).length;
  await waitFor('the client goes on sending heartbeats', async () => heartbeats(await requestLog()).length >= before + 3);
  r = await getInstance();
  check('its heartbeats do not undo the override', r.json.instance.status === 'OUT_OF_SERVICE', r.json.instance.status);

  // --- back UP by removing the override --------------------------------------------------------
  r = await raw('DELETE', `/eureka/apps/${APP_UP}/${ID}/status?value=UP`);
  check('DELETE .../status?value=UP answered 200', r.status === 200, r.status);
  await call(client, 'fetchRegistry');
  mine = listed(client);
  check('after the override is removed the client lists itself UP again', mine.length === 1 && mine[0].status === 'UP', JSON.stringify(mine));

  // --- a server that forgot everything: the client registers again on a 404 heartbeat --------
  const postsBefore = (await requestLog()).filter((e) => e.method === 'POST').length;
  r = await raw('POST', '/_double/restart?forget=all');
  check('POST /_double/restart?forget=all answered 200', r.status === 200, r.status);
  await waitFor('a heartbeat was answered 404 after the restart', async () => heartbeats(await requestLog()).some((e) => e.status === 404));
  await waitFor('the client registered again', async () => (await requestLog()).filter((e) => e.method === 'POST' && e.status === 204).length > postsBefore);
  r = await getInstance();
  check('after registering again the instance is UP', r.status === 200 && r.json.instance.status === 'UP', r.body);

  // --- delta fetches ---------------------------------------------------------------------------
  const deltaClient = makeClient({ shouldUseDelta: true, eureka: { registerWithEureka: false } });
  await call(deltaClient, 'start'); // the first fetch is a full one
  const other = {
    instance: {
      instanceId: 'js-delta', hostName: 'delta-host', app: APP, ipAddr: '127.0.0.2', vipAddress: APP,
      status: 'UP', port: { $: 18081, '@enabled': 'true' },
      dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$MyDataCenterInfo', name: 'MyOwn' },
    },
  };
  r = await raw('POST', `/eureka/apps/${APP}`, { 'Content-Type': 'application/json' }, JSON.stringify(other));
  check('a raw registration of a second instance answered 204', r.status === 204, `${r.status} ${r.body}`);
  await call(deltaClient, 'fetchRegistry');
  log = await requestLog();
  check('the delta client fetched /eureka/apps/delta', log.some((e) => e.method === 'GET' && e.path === '/eureka/apps/delta' && e.status === 200));
  check('the delta client learned the new instance from the delta', listed(deltaClient, 'js-delta').length === 1, JSON.stringify(deltaClient.getInstancesByAppId(APP)));
  r = await raw('DELETE', `/eureka/apps/${APP_UP}/js-delta`);
  check('the second instance was cancelled', r.status === 200, r.status);

  // --- what no client may send ------------------------------------------------------------------
  log = await requestLog();
  check('no request carried x-netflix-discovery-replication', !log.some((e) => 'x-netflix-discovery-replication' in e.headers));
  check('no request set status UNKNOWN', !log.some((e) => e.query.value === 'UNKNOWN'));
  check('every GET asked for JSON', log.filter((e) => e.method === 'GET').every((e) => /json/.test(e.headers.accept || '')));

  // --- deregister ------------------------------------------------------------------------------
  await call(client, 'stop');
  pass('client.stop(): deregistered');
  log = await requestLog();
  const deletes = log.filter((e) => e.method === 'DELETE' && e.path === `/eureka/apps/${APP}/${ID}`);
  check('the client sent DELETE /eureka/apps/jscheck/{id}, answered 200', deletes.length === 1 && deletes[0].status === 200, JSON.stringify(deletes));
  r = await getInstance();
  check('the instance is gone', r.status === 404, r.status);
  await call(observer, 'fetchRegistry');
  check('and no client lists it any more', listed(observer).length === 0, JSON.stringify(listed(observer)));
}

const watchdog = setTimeout(() => {
  console.error('FAIL - the check did not finish within 60 s');
  process.exit(1);
}, 60000);

main().then(
  () => {
    clearTimeout(watchdog);
    for (const c of clients) c.stop(() => {});
    console.log(`${passed} passed, 0 failed`);
    process.exit(0);
  },
  (err) => {
    clearTimeout(watchdog);
    console.error(`FAIL - ${err.message}`);
    console.error('# last lines of eureka-js-client\'s log:');
    for (const line of clientLog.slice(-20)) console.error(`#   ${line}`);
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  },
);
