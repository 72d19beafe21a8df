enum PlaceholderNetleaseCoordinator {}
