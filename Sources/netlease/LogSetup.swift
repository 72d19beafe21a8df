import Logging

/// Logging of the long-running commands: one line per event on stderr, at the chosen level.
enum LogSetup {
    static func bootstrap(_ level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
