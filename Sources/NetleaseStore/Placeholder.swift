enum PlaceholderNetleaseStore {}
