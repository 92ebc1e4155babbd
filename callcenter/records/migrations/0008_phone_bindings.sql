-- The agents' phones registered with the service's own registrar (standalone
-- mode), so that a restarted call process still knows where they are: a phone
-- refreshes its registration only when its interval runs out, up to an hour
-- later. One row per binding (the AOR's user and the Contact URI), as its last
-- record left it: written by the records writer from the `PhoneRegistered`
-- records (a row removed when the binding ends), read once by the call process
-- at start. `expires_at` is wall-clock time.

CREATE TABLE phone_bindings (
    aor         text NOT NULL,
    contact     text NOT NULL,
    source      text NOT NULL,         -- where the REGISTER came from: udp:10.0.0.7:5070
    expires_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,  -- the time of the record that wrote the row
    PRIMARY KEY (aor, contact)
);
