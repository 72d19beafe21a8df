import Foundation
import NetleaseCNI

// Wiring only: the CNI environment and stdin go to the plugin; its answer goes to stdout and the exit status.
let outcome = await CNIPlugin.run(
    environment: ProcessInfo.processInfo.environment, input: FileHandle.standardInput.readDataToEndOfFile())
FileHandle.standardOutput.write(outcome.stdout)
exit(outcome.exitStatus)
