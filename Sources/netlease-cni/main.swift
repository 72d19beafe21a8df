import Foundation
import NetleaseCNI

// Wiring only: `--version` and a call without CNI_COMMAND are answered without reading stdin; otherwise the CNI
// environment and stdin go to the plugin; its answer goes to stdout (stderr) and the exit status.
let environment = ProcessInfo.processInfo.environment
let outcome: CNIPlugin.Outcome
if let informational = CNIPlugin.informational(arguments: CommandLine.arguments, environment: environment) {
    outcome = informational
} else {
    outcome = await CNIPlugin.run(environment: environment, input: FileHandle.standardInput.readDataToEndOfFile())
}
FileHandle.standardOutput.write(outcome.stdout)
FileHandle.standardError.write(outcome.stderr)
exit(outcome.exitStatus)
