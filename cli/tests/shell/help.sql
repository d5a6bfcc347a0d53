-- \? lists the meta-commands and the statements hark understands.
\?
