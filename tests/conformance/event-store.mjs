// Part of server.mjs. In-memory EventStore for one session. Event ids are "<streamId>#<seq>" with a
// per-session sequence, so replay order is store order. It deliberately has no
// getStreamIdForEventId: without it the SDK lets a resume take over a stream
// whose old connection it has not yet seen close (it would answer 409 instead),
// which is the forgiving choice when a proxy sits in between.
export class MemoryEventStore {
  #events = new Map(); // eventId -> { streamId, seq, message }, in store order
  #seq = 0;

  async storeEvent(streamId, message) {
    const seq = ++this.#seq;
    const eventId = `${streamId}#${seq}`;
    this.#events.set(eventId, { streamId, seq, message });
    return eventId;
  }

  async replayEventsAfter(lastEventId, { send }) {
    const last = this.#events.get(lastEventId);
    if (!last) throw new Error(`unknown Last-Event-ID: ${lastEventId}`);
    for (const [eventId, event] of this.#events) {
      const isPriming = Object.keys(event.message).length === 0;
      if (event.streamId === last.streamId && event.seq > last.seq && !isPriming) {
        await send(eventId, event.message);
      }
    }
    return last.streamId;
  }
}
