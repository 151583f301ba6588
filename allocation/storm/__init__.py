"""The login-storm benchmark: many thin clients logging in at once over HTTP against
the real application server, PostgreSQL, a real LDAP directory and pools of ready
VMs (`manage.py bench_login_storm`, run by `scripts/bench.sh storm`).

- `slapd`: a throwaway OpenLDAP server in a temporary folder (also used by the
  directory tests);
- `seed`: the world in the database, built in bulk;
- `client`: the load generator, asyncio over raw HTTP/1.1, run in its own process;
- `report`: percentiles, answer counts and the "no VM handed out twice" checks;
- `profile`: the connect path in-process under cProfile, with query counts.

Nothing here is imported by the application itself."""
