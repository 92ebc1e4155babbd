"""The call process's shell around the pure cores (sip/, calls/, acd/).

`service.Service` is the call process's composition root: the database and
its migrations, the journal appender (records/appender.py), the SIP
transports and `runtime.SipRuntime` (which feeds the switchboard bytes and
the time, and executes what it returns), and the floor's half, in this
process or as a child (`floor_process.FloorProcess`, fed one way over the
link). Nothing on the floor side imports this package (.importlinter).
"""
