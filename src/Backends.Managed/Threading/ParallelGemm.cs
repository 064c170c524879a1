using System.Numerics;
using Lockstep.Backends.Managed.Gemm;

namespace Lockstep.Backends.Managed.Threading;

/// <summary>
/// A provider that splits each product C = alpha·op(A)·op(B) + beta·C over the backend's workers, each block on the
/// inner provider at one BLAS thread: by columns of C when it is at least as wide as tall, else by rows. Blocks are
/// multiples of 16 columns (a 64-byte line of floats); a product too small to repay the hand-over runs on the caller.
/// The operands stay pinned while the workers run (the caller waits for them), so the blocks are spans over pointers.
/// </summary>
internal sealed class ParallelGemm(IGemmProvider inner, WorkerPool workers) : IGemmProvider
{
    /// <summary>Below this many multiply-adds a product stays on one thread (about 10 µs of work).</summary>
    private const long MinParallelMacs = 1L << 20;

    private long _flops, _ticks;

    public IGemmProvider Inner => inner;

    /// <summary>Floating-point operations (2·M·N·K per product) and wall time spent in products since the last reset.</summary>
    public (double Flops, TimeSpan Elapsed) Statistics => (Interlocked.Read(ref _flops), System.Diagnostics.Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _ticks)));

    public void ResetStatistics()
    {
        Interlocked.Exchange(ref _flops, 0);
        Interlocked.Exchange(ref _ticks, 0);
    }
    public string Name => inner.Name;
    public string Version => inner.Version;
    public string Details => inner.Details;
    public int Threads => workers.Threads;

    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc) =>
        Split(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    public void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha, ReadOnlySpan<double> a, int lda,
        ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc) =>
        Split(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>
    /// C = alpha·op(A)·op(B) + beta·C, split over the workers, or on the calling worker alone when
    /// <paramref name="oneThread"/> (it is then one of several running at once; its time counts 1/Threads of the wall).
    /// </summary>
    public void Gemm<T>(bool transA, bool transB, int m, int n, int k, T alpha, ReadOnlySpan<T> a, int lda,
        ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc, bool oneThread) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!oneThread)
        {
            Split(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        inner.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        Count(m, n, k, start, oneThread: true);
    }

    /// <summary>
    /// Counts a product (2·m·n·k operations from <paramref name="start"/>, a <see cref="System.Diagnostics.Stopwatch"/>
    /// timestamp) in <see cref="Statistics"/>: the provider's, or one a kernel of the backend's own did.
    /// </summary>
    public void Count(int m, int n, int k, long start, bool oneThread)
    {
        long ticks = System.Diagnostics.Stopwatch.GetTimestamp() - start;
        Interlocked.Add(ref _ticks, oneThread ? ticks / workers.Threads : ticks);
        Interlocked.Add(ref _flops, 2L * m * n * k);
    }

    private unsafe void Split<T>(bool transA, bool transB, int m, int n, int k, T alpha, ReadOnlySpan<T> a, int lda,
        ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!GemmArguments.Check<T>(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc)) return;
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            SplitChecked(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        }
        finally
        {
            Count(m, n, k, start, oneThread: false);
        }
    }

    private unsafe void SplitChecked<T>(bool transA, bool transB, int m, int n, int k, T alpha, ReadOnlySpan<T> a, int lda,
        ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool byColumns = n >= m;
        int extent = byColumns ? n : m;
        int parts = (long)m * n * k < MinParallelMacs ? 1 : Math.Min(workers.Threads, extent / 16);
        if (parts <= 1)
        {
            inner.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        var job = Cache<Block<T>>.Rent();
        fixed (T* pa = a, pb = b, pc = c)
        {
            try
            {
                job.Set(inner, transA, transB, m, n, k, alpha, pa, a.Length, lda, pb, b.Length, ldb, beta, pc, c.Length, ldc, byColumns);
                job.Size = ((extent + parts - 1) / parts + 15) / 16 * 16;
                workers.For((extent + job.Size - 1) / job.Size, job);
            }
            finally
            {
                job.Clear();
                Cache<Block<T>>.Return(job);
            }
        }
    }

    public void Dispose() => inner.Dispose();

    public override string ToString() => $"{inner} split over {workers.Threads} workers";

    private sealed unsafe class Block<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
    {
        private IGemmProvider? _gemm;
        private bool _transA, _transB, _byColumns;
        private int _m, _n, _k, _lda, _ldb, _ldc, _aLength, _bLength, _cLength;
        private T _alpha, _beta;
        private T* _a, _b, _c;

        public int Size { get; set; }

        public void Set(IGemmProvider gemm, bool transA, bool transB, int m, int n, int k, T alpha, T* a, int aLength, int lda,
            T* b, int bLength, int ldb, T beta, T* c, int cLength, int ldc, bool byColumns)
        {
            (_gemm, _transA, _transB, _m, _n, _k, _alpha, _beta, _byColumns) = (gemm, transA, transB, m, n, k, alpha, beta, byColumns);
            _a = a;
            _b = b;
            _c = c;
            (_aLength, _lda, _bLength, _ldb, _cLength, _ldc) = (aLength, lda, bLength, ldb, cLength, ldc);
        }

        public void Clear()
        {
            _gemm = null;
            _a = _b = _c = null;
        }

        public void Run(int index, int worker)
        {
            int lo = index * Size;
            var a = new ReadOnlySpan<T>(_a, _aLength);
            var b = new ReadOnlySpan<T>(_b, _bLength);
            var c = new Span<T>(_c, _cLength);
            if (_byColumns)
            {
                // op(B)[:, lo:lo+cols]: columns of B as stored, or its rows when B is stored transposed.
                int cols = Math.Min(Size, _n - lo);
                _gemm!.Gemm(_transA, _transB, _m, cols, _k, _alpha, a, _lda, b[(_transB ? lo * _ldb : lo)..], _ldb, _beta, c[lo..], _ldc);
            }
            else
            {
                int rows = Math.Min(Size, _m - lo);
                _gemm!.Gemm(_transA, _transB, rows, _n, _k, _alpha, a[(_transA ? lo : lo * _lda)..], _lda, b, _ldb, _beta, c[(lo * _ldc)..], _ldc);
            }
        }
    }
}

/// <summary>Reusable work objects, so that starting a parallel loop allocates nothing once warm.</summary>
internal static class Cache<TJob> where TJob : class, new()
{
    private static readonly Stack<TJob> Free = new();
    private static readonly Lock Gate = new();

    public static TJob Rent()
    {
        lock (Gate)
        {
            if (Free.Count > 0) return Free.Pop();
        }
        return new TJob();
    }

    public static void Return(TJob job)
    {
        lock (Gate)
        {
            if (Free.Count < 16) Free.Push(job);
        }
    }
}

/// <summary>
/// The arrays of per-slot buffers a cached job hands out, one array per slot count, kept between calls: a job that
/// layers with different slot counts share in turn (AlexNet's 5×5 conv2 in two Winograd bands, conv3–conv5 in one)
/// allocates nothing once each count has been seen — made anew at each change of count, they cost AlexNet's
/// training step 216 bytes.
/// </summary>
internal struct SlotArrays<T>
{
    private T[]?[]?[]? _bySlots;

    /// <summary>The array of <paramref name="slots"/> entries (null until the caller fills them).</summary>
    public T[][] Get(int slots)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(slots);
        if (_bySlots is null || _bySlots.Length <= slots) Array.Resize(ref _bySlots, slots + 1);
        return (_bySlots[slots] ??= new T[slots][])!;
    }
}
