/// Told about every durable commit, for metrics: how many operations the batch held and how long its transaction
/// took (writes, generation bump and fsync). Called on the store's writer thread once the commit is durable and
/// before the batch's operations complete, so whoever was answered can already see the commit counted. Must not
/// block: it delays every operation of the batch.
public protocol CommitObserver: Sendable {
    func committed(operations: Int, duration: Duration)
}
