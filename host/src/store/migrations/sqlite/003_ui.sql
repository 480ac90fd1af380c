-- The web UI lists a package's versions newest first and finds a package's newest push; with
-- thousands of versions per package that needs one package's files in push order.
CREATE INDEX files_package_order ON files (package_id, id);
