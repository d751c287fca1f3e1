// A member of a consumer group on one of the streams mcp-redis writes, with
// the node-redis client: it creates the group, takes its own pending
// entries first and then new ones (XREADGROUP), does the work of each entry
// once (keyed by its event_id, or log_id on the audit stream) and
// acknowledges it (XACK). The same worker as examples/go-worker, flag for
// flag; see examples/README.md.
//
//   npm ci --prefix examples/node-worker
//   node examples/node-worker/worker.mjs --group indexers --from 0

import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';

// What a worker needs to know of each of the server's streams (README,
// "Entry encoding" and "Pub/sub notices"): the field that is the entry's
// own id, the fields that hold JSON text (objects, arrays, any-JSON values
// and numbers; every other field is a string, as it is), and the fields
// printed on the entry's line.
const STREAMS = {
  audit_log_stream: {
    idField: 'log_id',
    jsonFields: ['inputs', 'outputs', 'duration_ms', 'input_bytes'],
    keyFields: ['log_id', 'module', 'procedure', 'status', 'workflow_id', 'session_id'],
  },
  ccwj_update_stream: {
    idField: 'event_id',
    jsonFields: ['value'],
    keyFields: ['event_id', 'workflow_id', 'phase_id', 'field', 'value'],
  },
  user_feedback: {
    idField: 'event_id',
    jsonFields: [],
    keyFields: ['event_id', 'workflow_id', 'phase_id', 'session_id', 'user_id', 'module', 'procedure'],
  },
  workflow_events: {
    idField: 'event_id',
    jsonFields: [],
    keyFields: ['event_id', 'workflow_id', 'phase', 'event_type'],
  },
};

// How long an entry's work is remembered as done: the server's default
// idempotency window, after which the same id written again is a new entry.
const DONE_TTL_MS = 24 * 3600 * 1000;

// One blocking read waits at most this long, so a stop is seen within it.
const POLL_MS = 1000;

const log = (msg) => process.stderr.write(`node-worker: ${msg}\n`);

function usage(msg) {
  log(msg);
  log('usage: worker.mjs [--redis-url URL] [--prefix mcp:] [--stream workflow_events] [--group workers] ' +
    '[--consumer NAME] [--from $|0] [--count 10] [--max N] [--idle DURATION] [--json]');
  process.exit(2);
}

// A duration as Go writes it: 500ms, 2s, 1m30s, 1h.
function parseDuration(s) {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  const unit = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  let ms = 0;
  let m;
  while ((m = re.exec(s)) !== null) {
    ms += Number(m[1]) * unit[m[2]];
    if (re.lastIndex === s.length) return ms;
  }
  return usage(`--idle: not a duration: ${JSON.stringify(s)} (e.g. 500ms, 2s, 1m)`);
}

function positiveInt(name, s, min) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) usage(`--${name}: want an integer of at least ${min}, not ${JSON.stringify(s)}`);
  return n;
}

function options(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379/0' },
        prefix: { type: 'string', default: 'mcp:' },
        stream: { type: 'string', default: 'workflow_events' },
        group: { type: 'string', default: 'workers' },
        consumer: { type: 'string', default: `node-worker@${hostname()}` },
        from: { type: 'string', default: '$' },
        count: { type: 'string', default: '10' },
        max: { type: 'string', default: '0' },
        idle: { type: 'string', default: '0' },
        json: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    usage(err.message);
  }
  if (!Object.hasOwn(STREAMS, values.stream)) {
    usage(`--stream ${JSON.stringify(values.stream)} is not one of the server's streams (${Object.keys(STREAMS).join(', ')})`);
  }
  return {
    redisURL: values['redis-url'],
    prefix: values.prefix,
    stream: values.stream,
    group: values.group,
    consumer: values.consumer,
    from: values.from,
    count: positiveInt('count', values.count, 1),
    max: positiveInt('max', values.max, 0),
    idleMs: parseDuration(values.idle),
    json: values.json,
  };
}

// decode turns an entry's values into JSON values as the README's entry
// encoding says: strings as they are, JSON fields parsed. A value that is
// not valid JSON is kept as the string Redis holds.
function decode(values, shape) {
  const out = Object.create(null);
  for (const [k, v] of Object.entries(values)) {
    out[k] = v;
    if (shape.jsonFields.includes(k)) {
      try {
        out[k] = JSON.parse(v);
      } catch {
        // not JSON: kept as it is
      }
    }
  }
  return out;
}

// A value holding a space or a character that is not printable is quoted,
// so no entry can reach the terminal as escape sequences.
function quote(s) {
  return s === '' || /[\s"\p{C}]/u.test(s) ? JSON.stringify(s) : s;
}

async function main() {
  const o = options(process.argv.slice(2));
  const shape = STREAMS[o.stream];
  const key = o.prefix + o.stream;

  let stopping = false;
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      stopping = true;
    });
  }

  const client = createClient({ url: o.redisURL });
  // node-redis reconnects by itself; without a listener an 'error' event
  // would end the process.
  client.on('error', (err) => log(`redis: ${err.message}`));
  await client.connect();

  try {
    await client.xGroupCreate(key, o.group, o.from, { MKSTREAM: true });
    log(`created group ${o.group} on ${key}, starting at ${o.from}`);
  } catch (err) {
    // BUSYGROUP: the group exists already; join it where it is.
    if (!String(err.message).startsWith('BUSYGROUP')) throw err;
  }

  let handled = 0;
  const done = () => stopping || (o.max > 0 && handled >= o.max);

  // One XREADGROUP from id; block < 0 does not wait. sendCommand rather
  // than xReadGroup: a pending entry trimmed from the stream since comes
  // back with no fields (nil), which xReadGroup's reply does not take.
  async function read(id, block) {
    const count = o.max > 0 ? Math.min(o.count, o.max - handled) : o.count;
    const args = ['XREADGROUP', 'GROUP', o.group, o.consumer, 'COUNT', String(count)];
    if (block >= 0) args.push('BLOCK', String(block));
    args.push('STREAMS', key, id);
    const reply = await client.sendCommand(args);
    if (!reply || reply.length === 0) return []; // BLOCK ran out
    return reply[0][1].map(([entryID, pairs]) => {
      const values = Object.create(null);
      for (let i = 0; pairs && i < pairs.length; i += 2) values[pairs[i]] = pairs[i + 1];
      return { id: entryID, values, gone: !pairs };
    });
  }

  // One line per entry: the entry id, what became of it and its key
  // fields, or with --json one object with every field decoded.
  function report(id, status, fields) {
    if (o.json) {
      process.stdout.write(JSON.stringify({ stream: o.stream, id, status, fields }) + '\n');
      return;
    }
    let line = `${id} ${status}`;
    for (const k of shape.keyFields) {
      if (fields == null || !(k in fields)) continue;
      const v = fields[k];
      line += ` ${k}=${shape.jsonFields.includes(k) ? JSON.stringify(v) : quote(v)}`;
    }
    process.stdout.write(line + '\n');
  }

  // The work of one entry, unless done before, then its XACK. Delivery is
  // at least once: a worker that stops after the work and before its XACK
  // gets the entry back when it starts again (as another consumer of the
  // group does once the server's claim_events reclaims it). The done mark,
  // set right after the work and before the XACK, tells such an entry
  // apart; work that must happen exactly once would keep the mark in the
  // same transaction as its own effect.
  async function handle(m) {
    handled++;
    if (m.gone) {
      // Pending, but trimmed from the stream since: nothing to do.
      report(m.id, 'gone', null);
      await client.xAck(key, o.group, m.id);
      return;
    }
    const fields = decode(m.values, shape);
    const id = typeof fields[shape.idField] === 'string' ? fields[shape.idField] : '';
    const mark = `${o.prefix}done:{${key}}:${o.group}:${id}`;
    if (id !== '' && (await client.exists(mark)) > 0) {
      report(m.id, 'already_done', fields);
      await client.xAck(key, o.group, m.id);
      return;
    }

    report(m.id, 'done', fields); // the work: here, telling of the entry

    if (id !== '') await client.set(mark, m.id, { expiration: { type: 'PX', value: DONE_TTL_MS } });
    await client.xAck(key, o.group, m.id);
  }

  try {
    // Entries handed to this consumer earlier and never acknowledged (it
    // stopped between reading and XACK) come first: reading from id 0
    // gives them back, oldest first, without blocking.
    let last = '0';
    pending: while (!done()) {
      const msgs = await read(last, -1);
      if (msgs.length === 0) break;
      for (const m of msgs) {
        if (done()) break pending;
        await handle(m);
        last = m.id;
      }
    }

    // Then entries nobody in the group has had yet.
    let lastNew = Date.now();
    fresh: while (!done()) {
      let block = POLL_MS;
      if (o.idleMs > 0) {
        const left = o.idleMs - (Date.now() - lastNew);
        if (left <= 0) {
          log(`no new entry for ${o.idleMs}ms: stopping`);
          break;
        }
        block = Math.min(block, Math.ceil(left));
      }
      const msgs = await read('>', block);
      if (msgs.length > 0) lastNew = Date.now();
      for (const m of msgs) {
        if (done()) break fresh;
        await handle(m);
      }
    }
  } finally {
    await client.close();
  }
}

main().catch((err) => {
  log(err.stack ?? String(err));
  process.exit(1);
});
