using System.Runtime.ExceptionServices;

namespace Lockstep.Backends.Managed.Threading;

/// <summary>
/// One item of a parallel loop: <see cref="Run"/> is called once per index, with the index of the thread that runs it
/// among those that run the loop's items: 0 … min(Threads, count) − 1, distinct for threads running at once, so that a
/// loop of count items needs at most that many scratch buffers however many threads the pool has.
/// </summary>
internal interface IParallelWork
{
    void Run(int index, int worker);
}

/// <summary>
/// The managed backend's threads: the caller plus Threads − 1 dedicated background threads, which take the items of
/// one loop at a time. The backend's single threading policy (PERF-NOTES pitfall 1): parallelism lives here, and the
/// BLAS runs at one thread inside each item, so that the two never compete for the cores.
/// Unlike Parallel.For, a loop allocates nothing: the work is a reused object, the workers are started once.
/// Loops do not nest and do not overlap: a loop started while another runs (from another thread, or from inside an
/// item) runs inline on its caller.
/// </summary>
internal sealed class WorkerPool : IDisposable
{
    private readonly Thread[] _threads;
    private readonly SemaphoreSlim _start = new(0);
    private readonly ManualResetEventSlim _done = new(false, spinCount: 2000);
    private readonly Lock _gate = new();
    private IParallelWork? _work;
    private int _count;
    // The loop's generation (high 32 bits) and its next unclaimed item (low 32 bits): an item is claimed by one CAS,
    // so a helper that wakes late — after its loop has ended, on a loaded machine — can never claim an item of the
    // next loop with the previous loop's work; and the caller never waits for a helper that claimed nothing.
    private long _claim;
    // How many threads have claimed an item of the current loop: each takes the next number as its index for the loop.
    private int _joined;
    private int _pending;
    private ExceptionDispatchInfo? _error;
    private volatile bool _stopping;

    public WorkerPool(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        _threads = new Thread[threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            int worker = i + 1;
            _threads[i] = new Thread(Loop) { IsBackground = true, Name = $"lockstep-managed-{worker}" };
            _threads[i].Start();
        }
    }

    /// <summary>Threads that run a loop's items, the caller included.</summary>
    public int Threads { get; }

    /// <summary>
    /// Runs work.Run(i, worker) for every i in [0, count) and returns when all have finished; rethrows the first failure.
    /// Which thread runs which item depends on timing: an item's result must not depend on <c>worker</c> beyond
    /// choosing scratch space that no other running item uses.
    /// </summary>
    public void For(int count, IParallelWork work)
    {
        if (count <= 0) return;
        if (Threads == 1 || count == 1 || !_gate.TryEnter())
        {
            for (int i = 0; i < count; i++) work.Run(i, 0);
            return;
        }
        try
        {
            // The new generation's claims closed first: a thread that read the last loop's finished claim and then read
            // this loop's work and count would otherwise claim an item with its CAS on the old claim still matching,
            // run it twice and count it against this loop, which would return with an item still running (VGG16's
            // weight gradient: a phase's job cleared under it). Any claim read before this exchange now fails its CAS;
            // one read after it finds no items until the loop is published.
            long generation = (Volatile.Read(ref _claim) >> 32) + 1;
            Interlocked.Exchange(ref _claim, (generation << 32) | int.MaxValue);
            _work = work;
            _count = count;
            _error = null;
            _pending = count;
            _joined = 0;
            _done.Reset();
            Volatile.Write(ref _claim, generation << 32);   // publishes the loop
            _start.Release(Math.Min(_threads.Length, count - 1));
            Drain();
            while (Volatile.Read(ref _pending) > 0)
            {
                _done.Wait();
                if (Volatile.Read(ref _pending) == 0) break;
                _done.Reset();   // a late signal of the previous loop
            }
            _work = null;
            _error?.Throw();
        }
        finally
        {
            _gate.Exit();
        }
    }

    private void Loop()
    {
        while (true)
        {
            _start.Wait();
            if (_stopping) return;
            Drain();
        }
    }

    // Claims and runs items until the loop has none left. A thread's index in a loop is taken at its first claim in
    // that loop (the generation in the claim's high bits tells a later loop apart), so the threads that run a loop's
    // items are numbered 0, 1, … in the order they joined it — whichever pool threads they are.
    private void Drain()
    {
        long joinedGeneration = -1;
        int worker = 0;
        while (true)
        {
            long claim = Volatile.Read(ref _claim);
            var work = _work;
            int count = _count;
            int i = (int)(claim & 0xFFFFFFFF);
            if (work is null || i >= count) return;
            // The CAS fails if the loop moved on since the reads above (then work and count may be another loop's).
            if (Interlocked.CompareExchange(ref _claim, claim + 1, claim) != claim) continue;
            // _joined was reset before this generation was published, and is not reset again before this item is done.
            if (claim >> 32 != joinedGeneration)
            {
                joinedGeneration = claim >> 32;
                worker = Interlocked.Increment(ref _joined) - 1;
            }
            if (_error is null)
            {
                try
                {
                    work.Run(i, worker);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref _error, ExceptionDispatchInfo.Capture(e), null);   // the rest are skipped
                }
            }
            if (Interlocked.Decrement(ref _pending) == 0) _done.Set();
        }
    }

    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        if (_threads.Length > 0) _start.Release(_threads.Length);
        foreach (var thread in _threads) thread.Join();
        _start.Dispose();
        _done.Dispose();
    }
}
