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
