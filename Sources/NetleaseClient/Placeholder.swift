enum PlaceholderNetleaseClient {}
