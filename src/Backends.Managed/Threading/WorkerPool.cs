using System.Runtime.ExceptionServices;

namespace Lockstep.Backends.Managed.Threading;

/// <summary>One item of a parallel loop: <see cref="Run"/> is called once per index, on worker 0 … Threads − 1.</summary>
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
    private int _next;
    private int _active;
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
            _threads[i] = new Thread(() => Loop(worker)) { IsBackground = true, Name = $"lockstep-managed-{worker}" };
            _threads[i].Start();
        }
    }

    /// <summary>Threads that run a loop's items, the caller included.</summary>
    public int Threads { get; }

    /// <summary>Runs work.Run(i, worker) for every i in [0, count) and returns when all have finished; rethrows the first failure.</summary>
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
            _work = work;
            _count = count;
            _next = 0;
            _error = null;
            int helpers = Math.Min(_threads.Length, count - 1);
            _active = helpers;
            _done.Reset();
            _start.Release(helpers);
            Drain(0);
            if (helpers > 0) _done.Wait();
            _work = null;
            _error?.Throw();
        }
        finally
        {
            _gate.Exit();
        }
    }

    private void Loop(int worker)
    {
        while (true)
        {
            _start.Wait();
            if (_stopping) return;
            Drain(worker);
            if (Interlocked.Decrement(ref _active) == 0) _done.Set();
        }
    }

    private void Drain(int worker)
    {
        var work = _work!;
        int i;
        while ((i = Interlocked.Increment(ref _next) - 1) < _count)
        {
            try
            {
                work.Run(i, worker);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, ExceptionDispatchInfo.Capture(e), null);
                Volatile.Write(ref _next, _count);   // the rest of the loop is skipped
            }
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
