using Lockstep.Backends.Managed;
using Lockstep.Backends.Managed.Threading;

namespace Lockstep.Tests;

/// <summary>
/// The worker index a loop's items see is the thread's place among those running that loop, below min(Threads, count):
/// kernels size their scratch by it. Found on a 16-core machine, where a 2-image convolution indexed its 2 column
/// buffers by the pool thread's number (up to 15) and failed with IndexOutOfRangeException.
/// </summary>
public sealed class WorkerPoolTests
{
    private sealed class Recorder(int items) : IParallelWork
    {
        public readonly int[] Workers = new int[items];
        private int _running;

        public void Run(int index, int worker)
        {
            Interlocked.Increment(ref _running);
            Thread.SpinWait(20_000);   // long enough that several threads join the loop
            Workers[index] = worker;
            Interlocked.Decrement(ref _running);
        }
    }

    [Theory]
    [InlineData(16, 2)]
    [InlineData(16, 3)]
    [InlineData(8, 64)]
    [InlineData(3, 1)]
    public void For_WorkerIndexBelowTheLoopsThreads(int threads, int items)
    {
        using var pool = new WorkerPool(threads);
        for (int round = 0; round < 50; round++)
        {
            var work = new Recorder(items);
            pool.For(items, work);
            int limit = Math.Min(threads, items);
            Assert.All(work.Workers, w => Assert.InRange(w, 0, limit - 1));
        }
    }

    /// <summary>
    /// One job through loops of alternating counts, as Winograd's phases run (a phase of 16 positions, then one of 32
    /// chunks): every item of every loop runs exactly once, and each For returns only after all its items have finished.
    /// Found on VGG16's weight gradient, where a thread that had read the finished loop's claim and then the next
    /// loop's job and count claimed an item under the old generation and counted it against the new loop, which then
    /// returned with an item still running — on a job already cleared (NullReferenceException in its output phase).
    /// </summary>
    [Fact]
    public void For_RunsEachItemOnceAndReturnsWhenAllHaveFinished()
    {
        using var pool = new WorkerPool(3);
        var job = new Counter();
        for (int loop = 0; loop < 100_000; loop++)
        {
            int count = loop % 2 == 0 ? 2 : 5;
            job.Start(count);
            pool.For(count, job);
            int[] runs = job.Finish();
            Assert.True(runs.All(r => r == 1), $"loop {loop} of {count} items: runs per item {string.Join(", ", runs)} when For returned");
        }
    }

    private sealed class Counter : IParallelWork
    {
        private int[] _started = [], _finished = [];

        public void Start(int count) => (_started, _finished) = (new int[count], new int[count]);

        public int[] Finish() => _finished.Select((f, i) => Volatile.Read(ref _finished[i]) == Volatile.Read(ref _started[i]) ? f : -1).ToArray();

        public void Run(int index, int worker)
        {
            var started = _started;
            var finished = _finished;
            Interlocked.Increment(ref started[index]);
            Thread.SpinWait(50);
            Interlocked.Increment(ref finished[index]);
        }
    }

    /// <summary>More pool threads than images or Winograd bands: im2col, Winograd (forward, dx, dw) and pooling run.</summary>
    [Theory]
    [InlineData(3, 2)]     // im2col
    [InlineData(3, 40)]    // Winograd F(2×2, 3×3)
    [InlineData(5, 40)]    // Winograd F(2×2, 5×5)
    public void Kernels_RunOnMoreThreadsThanItems(int f, int size)
    {
        var xs = Shape.Nchw(2, 32, size, size);
        var ws = new Shape(32, 32, f, f);
        var spec = ConvSpec.Square(f, 1, f / 2);
        double[] x = TestSupport.Random((int)xs.Count, 3), w = TestSupport.Random((int)ws.Count, 4);
        double[] Run(int threads)
        {
            using var backend = new ManagedBackend("auto", threads);
            using var tx = backend.Upload(x, xs, DType.Float64);
            using var tw = backend.Upload(w, ws, DType.Float64);
            using var y = backend.Conv2d(tx, tw, null, spec);
            using var g = backend.Conv2dBackward(y, tx, tw, spec, needDx: true);
            return [.. y.ToDoubles(), .. g.Dx!.ToDoubles(), .. g.Dw.ToDoubles()];
        }
        TestSupport.Close(Run(1), Run(16), 1e-12, $"{f}×{f} conv on 16 threads against 1");
    }
}
