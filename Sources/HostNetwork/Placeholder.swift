enum PlaceholderHostNetwork {}
