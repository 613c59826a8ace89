"""Frame folders of other tools (denseflow, MMAction2, TSN, ...): their layouts, importing
them into records, exporting records into them, and their annotation lists."""
