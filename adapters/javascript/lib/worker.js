'use strict';
// The worker's loop: handshake, heartbeats both ways, turning node messages into jobs, and
// leaving (terminate, EOF, silence). Everything runs on Node's one thread; handlers that
// return promises overlap, and a cancel reaches them between their awaits.

const protocol = require('./protocol');
const { Job } = require('./job');

// After this many malformed messages the worker stops logging them.
const BAD_MESSAGE_LOG_LIMIT = 10;

class Worker {
  /**
   * @param socket a connected net.Socket to the node
   * @param handlers Map(event -> handler), from loadApp
   * @param options {workerId, heartbeatMs, timeoutMs, maxMessage, log(message), exit(code)}
   */
  constructor(socket, handlers, options) {
    this.socket = socket;
    this.handlers = handlers;
    this.workerId = options.workerId;
    this.heartbeatMs = options.heartbeatMs;
    this.timeoutMs = options.timeoutMs;
    this.maxMessage = options.maxMessage ?? protocol.DEFAULT_MAX_MESSAGE;
    this.log = options.log;
    this.exitProcess = options.exit ?? ((code) => process.exit(code));
    this.jobs = new Map();
    this.reader = new protocol.FrameReader();
    this.terminating = false;
    this.closed = false;
    this.corked = false;
    this.badMessages = 0;
    this.lastHeard = Date.now();
    this.timers = [];
  }

  start() {
    this.send(protocol.encode([protocol.HANDSHAKE, this.workerId, protocol.PROTOCOL_VERSION, process.pid]));
    const heartbeat = protocol.encode([protocol.HEARTBEAT]);
    this.timers.push(setInterval(() => this.send(heartbeat), this.heartbeatMs));
    this.watchSilence(this.timeoutMs);
    this.socket.on('data', (data) => this.onData(data));
    this.socket.on('end', () => {
      if (this.reader.pending()) {
        this.log('the node closed the channel in the middle of a frame; exiting');
        this.exit(1);
      } else {
        this.exit(0);
      }
    });
    this.socket.on('error', (err) => {
      this.log(`the channel to the node failed (${err.message}); exiting`);
      this.exit(0);
    });
  }

  /** Exits with 1 once the node has been silent for `timeoutMs`. */
  watchSilence(wait) {
    const timer = setTimeout(() => {
      const silent = Date.now() - this.lastHeard;
      if (silent >= this.timeoutMs) {
        this.log(`nothing heard from the node for ${this.timeoutMs} ms; exiting`);
        this.exit(1);
      } else {
        this.watchSilence(this.timeoutMs - silent);
      }
    }, wait);
    this.timers.push(timer);
  }

  onData(data) {
    this.lastHeard = Date.now();
    this.reader.feed(data);
    for (const body of this.reader.frames()) this.dispatch(body);
  }

  dispatch(body) {
    let message;
    try {
      message = protocol.parse(body);
    } catch (e) {
      this.badMessage(e.message);
      return;
    }
    const [kind, sid] = message;
    switch (kind) {
      case protocol.HEARTBEAT:
        return;
      case protocol.TERMINATE:
        // No new jobs will come; the worker leaves once the running ones are done.
        this.terminating = true;
        if (this.jobs.size === 0) this.exit(0);
        return;
      case protocol.INVOKE:
        this.invoke(sid, message[2], message[3]);
        return;
      default:
        break;
    }
    // A job that already ended on our side (404, cancelled, a streaming handler that
    // returned early) may still get request messages in flight: not an error.
    const job = this.jobs.get(sid);
    if (job === undefined) return;
    if (kind === protocol.CHUNK) {
      if (!job.feed(message[2])) this.badMessage(`chunk for job ${sid} after the end of its request`);
    } else if (kind === protocol.CHOKE) {
      job.endRequest();
    } else if (kind === protocol.CANCEL) {
      job.cancel();
    }
  }

  invoke(sid, event, meta) {
    if (this.terminating) {
      // The node promised none would come; answer rather than leave it hanging.
      this.send(protocol.encode([protocol.ERROR, sid, 503, 'worker is terminating']));
      return;
    }
    if (this.jobs.has(sid)) {
      this.badMessage(`invoke for job ${sid}, which is still running`);
      return;
    }
    const handler = this.handlers.get(event);
    if (handler === undefined) {
      this.send(protocol.encode([protocol.ERROR, sid, 404, `no handler for event '${event}'`]));
      return;
    }
    const job = new Job(sid, event, meta, handler, this);
    this.jobs.set(sid, job);
    if (job.streaming) job.start();
  }

  jobDone(job) {
    if (this.jobs.get(job.sid) === job) this.jobs.delete(job.sid);
    if (this.terminating && this.jobs.size === 0) this.exit(0);
  }

  badMessage(reason) {
    this.badMessages += 1;
    if (this.badMessages <= BAD_MESSAGE_LOG_LIMIT) {
      this.log(`ignored a bad message from the node: ${reason}`);
      if (this.badMessages === BAD_MESSAGE_LOG_LIMIT) this.log('not logging further bad messages');
    }
  }

  /** Queues a frame; frames written in one turn of the event loop go out in one write. */
  send(frame) {
    if (this.closed) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
    return true;
  }

  /** Leaves: nothing more is sent; what was queued is flushed first (briefly). */
  exit(code) {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    if (this.corked) this.socket.uncork();
    if (this.socket.writableLength === 0 || this.socket.destroyed) {
      this.exitProcess(code);
      return;
    }
    this.socket.end(() => this.exitProcess(code));
    setTimeout(() => this.exitProcess(code), 1000).unref();
  }
}

module.exports = { Worker };
