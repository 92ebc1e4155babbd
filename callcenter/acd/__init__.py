"""The ACD: queues, agents and the ring clock that enforces "answer within three rings"."""
