"""`balise provision`: write a secured broker deployment (CA, certificates, users, ACL, configs).

Pure parts (`contract`, `pki`, `mosquitto`, `configs`) compute file contents in memory;
`deployment` reads an existing deployment back and plans the files; `writer` puts the plan
on disk atomically; `command` is the CLI face. May import `gateway.errors`, `cryptography`
and `tomli_w`; nothing else of ours.
"""
