using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Lockstep.Backends.Managed.Gemm;
using Lockstep.Backends.Managed.Tensors;
using Lockstep.Backends.Managed.Threading;
using static Lockstep.Backends.Managed.Kernels.VectorFma;

namespace Lockstep.Backends.Managed.Kernels;

// N batch, in = features per item (C·H·W for a rank-4 input), out = output features.

/// <summary>
/// FC: a matrix product plus bias, and its backward. Each product reads the operands where they lie, the transposes
/// told to the BLAS (W is [out × in] as libtorch keeps it): no operand is copied or transposed in memory.
/// </summary>
internal static class Linear
{
    /// <summary>
    /// Up to this batch the forward is memory-bound on W, and a GEMM would first pack all of W (VGG16's fc1: 411 MB);
    /// instead each row of W is read once and dotted with every input row while it is in cache.
    /// </summary>
    public const int DotBatch = 16;

    // y [N × out] = x [N × in] · Wᵀ [in × out] + b
    public static unsafe void Forward<T>(IGemmProvider gemm, WorkerPool workers, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b,
        int n, int inputs, int outputs, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (n <= DotBatch)
        {
            var job = Cache<DotJob<T>>.Rent();
            fixed (T* px = x, pw = w, py = y)
            {
                try
                {
                    job.Set(px, pw, py, n, inputs, outputs);
                    workers.For(job.Items(workers.Threads), job);
                }
                finally
                {
                    job.Clear();
                    Cache<DotJob<T>>.Return(job);
                }
            }
        }
        else
        {
            gemm.Gemm(false, true, n, outputs, inputs, T.One, x, inputs, w, inputs, T.Zero, y, outputs);
        }
        if (b.IsEmpty) return;
        for (int i = 0; i < n; i++)
        {
            var row = y.Slice(i * outputs, outputs);
            TensorPrimitives.Add(row, b, row);
        }
    }

    /// <summary>
    /// Up to this many outputs dx = dy·W is a short sum per element (K = out): a GEMM spends more on packing and
    /// splitting than on the multiply-adds, so <see cref="SmallKJob{T}"/> runs it in a fixed order instead (cifar's
    /// 64 × 4096 → 10 at 2 threads: 0.15 → 0.07 ms; at 32 outputs the two were even).
    /// </summary>
    public const int SmallOutputs = 16;

    /// <summary>Up to this batch (and <see cref="SmallOutputs"/>) dw = dyᵀ·x runs in <see cref="SmallKJob{T}"/> too (K = N).</summary>
    public const int SmallBatch = 64;

    // dx [N × in] = dy · W;  dw [out × in] = dyᵀ · x;  db[o] = Σ_n dy[n, o]
    public static unsafe void Backward<T>(IGemmProvider gemm, WorkerPool workers, BufferPool pool, ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w,
        int n, int inputs, int outputs, Span<T> dx, Span<T> dw, Span<T> db) where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool small = outputs <= SmallOutputs;
        fixed (T* pdy = dy, px = x, pw = w, pdx = dx, pdw = dw)
        {
            if (!dx.IsEmpty)
            {
                if (small) SmallKJob<T>.Run(workers, pdy, outputs, 1, pw, n, inputs, outputs, pdx);
                else if (StreamJob<T>.Applies(n, inputs, outputs)) StreamJob<T>.Run(workers, pdy, pw, n, inputs, outputs, pdx);
                else gemm.Gemm(false, false, n, inputs, outputs, T.One, dy, outputs, w, inputs, T.Zero, dx, inputs);
            }
            // dw[o, :] = Σ_i dy[i, o]·x[i, :]: A(o, i) = dy[i·out + o]
            if (small && n <= SmallBatch) SmallKJob<T>.Run(workers, pdy, 1, outputs, px, outputs, inputs, n, pdw);
            else if (OuterJob<T>.Applies(n, inputs, outputs)) OuterJob<T>.Run(workers, pool, pdy, px, n, inputs, outputs, pdw);
            else gemm.Gemm(true, false, outputs, inputs, n, T.One, dy, outputs, x, inputs, T.Zero, dw, inputs);
        }
        db.Clear();
        for (int i = 0; i < n; i++) TensorPrimitives.Add(db, dy.Slice(i * outputs, outputs), db);
    }
}

/// <summary>
/// y[i, o] = x_i · w_o for the outputs o of one item (a fixed range: item i of k takes [i·out/k, (i+1)·out/k)), every
/// input row i per row of W. Each sum runs in one fixed order from element 0 (not aligned to the address, as
/// TensorPrimitives' reductions are), so the result depends neither on the threads nor on where the arrays lie.
/// Where at least <see cref="MinRows"/> input rows remain, up to <see cref="Rows"/> of them go together: each vector of
/// the W row is loaded once and fused-multiply-added into one accumulator per input row. Dotting the row with each input
/// in turn read it from L2 once per input row (AlexNet's fc1: a 36 KB row, past L1, 8 times) and the forward ran at
/// L2's speed, not memory's: in alternate processes (2 workers, float32, medians of 21), AlexNet's fc1 at batch 8
/// 11.3–11.9 against 14.6–15.4 ms, 4096 → 4096 6.5–6.7 against 6.7–7.1 (interleaved in one process, a trial version:
/// 11.6 against 14.3 and 5.9 against 7.2); at batch 2 the dots stay (VGG16's fc1: 17.2 against 25.9 ms with eight
/// accumulators for two rows).
/// </summary>
internal sealed unsafe class DotJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
{
    private T* _x, _w, _y;
    private int _n, _inputs, _outputs, _items;

    public void Set(T* x, T* w, T* y, int n, int inputs, int outputs)
    {
        _x = x;
        _w = w;
        _y = y;
        (_n, _inputs, _outputs) = (n, inputs, outputs);
    }

    /// <summary>Items for <paramref name="threads"/> workers: a few per worker, none smaller than 64 outputs.</summary>
    public int Items(int threads) => _items = Math.Max(1, Math.Min(4 * threads, _outputs / 64));

    public void Clear() => _x = _w = _y = null;

    /// <summary>Input rows that share the loads of W (one accumulator each), and the fewest worth it.</summary>
    private const int Rows = 8, MinRows = 5;

    public void Run(int index, int worker)
    {
        int o0 = (int)((long)index * _outputs / _items), o1 = (int)((long)(index + 1) * _outputs / _items);
        for (int o = o0; o < o1; o++)
        {
            var wo = new ReadOnlySpan<T>(_w + (long)o * _inputs, _inputs);
            int i = 0;
            for (; _n - i >= MinRows; i += Rows)
            {
                if (Vector512.IsHardwareAccelerated && _inputs >= Vector512<T>.Count) RowSums<Lanes512<T>>(wo, o, i, Math.Min(Rows, _n - i));
                else if (Vector256.IsHardwareAccelerated && _inputs >= Vector256<T>.Count) RowSums<Lanes256<T>>(wo, o, i, Math.Min(Rows, _n - i));
                else break;
            }
            for (; i < _n; i++) _y[(long)i * _outputs + o] = Dot(new ReadOnlySpan<T>(_x + (long)i * _inputs, _inputs), wo);
        }
    }

    // y[i, o] for the m ≤ Rows input rows from i0: Σ_j w_o[j]·x_i[j], one vector accumulator per row over the whole
    // vectors from j = 0 (a row past the m-th reads row i0 again and is dropped), then its lanes in order, then the
    // scalar tail.
    private void RowSums<TLanes>(ReadOnlySpan<T> wo, int o, int i0, int m) where TLanes : struct, IVectorLanes<TLanes, T>
    {
        int v = TLanes.Count, len = _inputs;
        ref T w = ref MemoryMarshal.GetReference(wo);
        ref T x0 = ref Row(i0, 0, m); ref T x1 = ref Row(i0, 1, m); ref T x2 = ref Row(i0, 2, m); ref T x3 = ref Row(i0, 3, m);
        ref T x4 = ref Row(i0, 4, m); ref T x5 = ref Row(i0, 5, m); ref T x6 = ref Row(i0, 6, m); ref T x7 = ref Row(i0, 7, m);
        TLanes a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        int j = 0;
        for (; j <= len - v; j += v)
        {
            var wj = TLanes.Load(ref w, j);
            a0 = TLanes.Fma(wj, TLanes.Load(ref x0, j), a0);
            a1 = TLanes.Fma(wj, TLanes.Load(ref x1, j), a1);
            a2 = TLanes.Fma(wj, TLanes.Load(ref x2, j), a2);
            a3 = TLanes.Fma(wj, TLanes.Load(ref x3, j), a3);
            a4 = TLanes.Fma(wj, TLanes.Load(ref x4, j), a4);
            a5 = TLanes.Fma(wj, TLanes.Load(ref x5, j), a5);
            a6 = TLanes.Fma(wj, TLanes.Load(ref x6, j), a6);
            a7 = TLanes.Fma(wj, TLanes.Load(ref x7, j), a7);
        }
        for (int r = 0; r < m; r++)
        {
            var a = r switch { 0 => a0, 1 => a1, 2 => a2, 3 => a3, 4 => a4, 5 => a5, 6 => a6, _ => a7 };
            T sum = T.Zero;
            for (int k = 0; k < v; k++) sum += TLanes.Element(a, k);
            ref T xr = ref Row(i0, r, m);
            for (int t = j; t < len; t++) sum += Unsafe.Add(ref w, t) * Unsafe.Add(ref xr, t);
            _y[(long)(i0 + r) * _outputs + o] = sum;
        }
    }

    private ref T Row(int i0, int r, int m) => ref Unsafe.AsRef<T>(_x + (long)(i0 + (r < m ? r : 0)) * _inputs);

    // Σ_j a[j]·b[j]: four vector accumulators over blocks of 4 vectors from j = 0 (the widest vectors with at least one
    // block), combined (0+1)+(2+3), then the lanes in order, then the scalar tail.
    private static T Dot(ReadOnlySpan<T> a, ReadOnlySpan<T> b)
    {
        int len = a.Length, j = 0;
        T sum = T.Zero;
        ref T ra = ref MemoryMarshal.GetReference(a);
        ref T rb = ref MemoryMarshal.GetReference(b);
        if (Vector512.IsHardwareAccelerated && len >= 4 * Vector512<T>.Count) sum = Blocks<Lanes512<T>>(ref ra, ref rb, len, ref j);
        else if (Vector256.IsHardwareAccelerated && len >= 4 * Vector256<T>.Count) sum = Blocks<Lanes256<T>>(ref ra, ref rb, len, ref j);
        for (; j < len; j++) sum += Unsafe.Add(ref ra, j) * Unsafe.Add(ref rb, j);
        return sum;
    }

    // The vector part of Dot for one width: whole blocks of 4 vectors from j, j left past the last.
    private static T Blocks<TLanes>(ref T ra, ref T rb, int len, ref int j) where TLanes : struct, IVectorLanes<TLanes, T>
    {
        int v = TLanes.Count;
        TLanes s0 = default, s1 = default, s2 = default, s3 = default;
        for (; j <= len - 4 * v; j += 4 * v)
        {
            s0 = TLanes.Add(s0, TLanes.Multiply(TLanes.Load(ref ra, j), TLanes.Load(ref rb, j)));
            s1 = TLanes.Add(s1, TLanes.Multiply(TLanes.Load(ref ra, j + v), TLanes.Load(ref rb, j + v)));
            s2 = TLanes.Add(s2, TLanes.Multiply(TLanes.Load(ref ra, j + 2 * v), TLanes.Load(ref rb, j + 2 * v)));
            s3 = TLanes.Add(s3, TLanes.Multiply(TLanes.Load(ref ra, j + 3 * v), TLanes.Load(ref rb, j + 3 * v)));
        }
        var s = TLanes.Add(TLanes.Add(s0, s1), TLanes.Add(s2, s3));
        T sum = T.Zero;
        for (int k = 0; k < v; k++) sum += TLanes.Element(s, k);
        return sum;
    }
}

/// <summary>
/// C [M × N] = A · B [K × N] for a small K, A read through strides (A(r, k) = a[r·rowStride + k·kStride]): each element
/// of C is Σ_k A(r, k)·B[k, j] fused-multiply-added from k = 0 up, in vector lanes and in the scalar tail alike, so the
/// bits depend neither on how the columns are split (item i of n takes a fixed range of 64-column blocks) nor on the
/// thread count. Columns are taken a block at a time, packed, so the block of B stays in L1 while every row of C passes.
/// </summary>
internal sealed unsafe class SmallKJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Below this many multiply-adds a product stays on its thread.</summary>
    private const long MinParallelMacs = 1L << 20;

    private T* _a, _b, _c;
    private int _rowStride, _kStride, _m, _n, _k, _items, _blocks;

    public static void Run(WorkerPool workers, T* a, int rowStride, int kStride, T* b, int m, int n, int k, T* c)
    {
        var job = Cache<SmallKJob<T>>.Rent();
        try
        {
            job._a = a;
            job._b = b;
            job._c = c;
            (job._rowStride, job._kStride, job._m, job._n, job._k) = (rowStride, kStride, m, n, k);
            job._blocks = (n + 63) / 64;
            job._items = (long)m * n * k < MinParallelMacs ? 1 : Math.Min(job._blocks, 4 * workers.Threads);
            workers.For(job._items, job);
        }
        finally
        {
            job._a = job._b = job._c = null;
            Cache<SmallKJob<T>>.Return(job);
        }
    }

    public void Run(int index, int worker)
    {
        int j0 = (int)((long)index * _blocks / _items) * 64, j1 = Math.Min(_n, (int)((long)(index + 1) * _blocks / _items) * 64);
        // The K rows of B over a block of columns, copied next to each other (rows of B lie N elements apart: a
        // multiple of 4 KB when N is, so with K ≥ 12 they would all fall in one L1 set) into about 16 KB.
        int width = Math.Max(16, PackElements / _k / 16 * 16);
        Span<T> pack = stackalloc T[_k * width];
        fixed (T* pb = pack)
        {
            for (int jb = j0; jb < j1; jb += width)
            {
                int cols = Math.Min(j1 - jb, width);
                for (int t = 0; t < _k; t++) new ReadOnlySpan<T>(_b + (long)t * _n + jb, cols).CopyTo(new Span<T>(pb + t * cols, cols));
                int r = 0;
                for (; r + 1 < _m; r += 2) RowPair(_a + (long)r * _rowStride, pb, cols, _c + (long)r * _n + jb);
                if (r < _m) Row(_a + (long)r * _rowStride, pb, cols, _c + (long)r * _n + jb);
            }
        }
    }

    /// <summary>Elements of B packed per block: 16 KB of floats (32 KB of doubles), within L1 with room for C's rows.</summary>
    private const int PackElements = 4096;

    // Rows r and r + 1 of C (a and a + rowStride, c and c + N) over the vector part, then each row's tail: two rows
    // share each load of B and keep 8 independent sums in flight (one row's 4 would wait on the FMA latency).
    private void RowPair(T* a, T* b, int cols, T* c)
    {
        int j = 0, k = _k, ks = _kStride, rs = _rowStride;
        if (Vector512.IsHardwareAccelerated)
        {
            int v = Vector512<T>.Count;
            for (; j <= cols - 4 * v; j += 4 * v)
            {
                Vector512<T> s0 = default, s1 = default, s2 = default, s3 = default;
                Vector512<T> u0 = default, u1 = default, u2 = default, u3 = default;
                T* bj = b + j;
                for (int t = 0; t < k; t++, bj += cols)
                {
                    var at = Vector512.Create(a[t * ks]);
                    var bt = Vector512.Create(a[rs + t * ks]);
                    var b0 = Vector512.Load(bj);
                    var b1 = Vector512.Load(bj + v);
                    var b2 = Vector512.Load(bj + 2 * v);
                    var b3 = Vector512.Load(bj + 3 * v);
                    s0 = Fma(b0, at, s0);
                    s1 = Fma(b1, at, s1);
                    s2 = Fma(b2, at, s2);
                    s3 = Fma(b3, at, s3);
                    u0 = Fma(b0, bt, u0);
                    u1 = Fma(b1, bt, u1);
                    u2 = Fma(b2, bt, u2);
                    u3 = Fma(b3, bt, u3);
                }
                s0.Store(c + j);
                s1.Store(c + j + v);
                s2.Store(c + j + 2 * v);
                s3.Store(c + j + 3 * v);
                T* d = c + _n;
                u0.Store(d + j);
                u1.Store(d + j + v);
                u2.Store(d + j + 2 * v);
                u3.Store(d + j + 3 * v);
            }
        }
        if (j < cols)
        {
            Row(a, b + j, cols - j, c + j, cols);
            Row(a + rs, b + j, cols - j, c + _n + j, cols);
        }
    }

    // c[j] = Σ_t a[t·kStride]·b[t·ldb + j] for j < cols
    private void Row(T* a, T* b, int cols, T* c) => Row(a, b, cols, c, cols);

    private void Row(T* a, T* b, int cols, T* c, int ldb)
    {
        int j = 0, k = _k, ks = _kStride;
        if (Vector512.IsHardwareAccelerated)
        {
            int v = Vector512<T>.Count;
            for (; j <= cols - 4 * v; j += 4 * v)
            {
                Vector512<T> s0 = default, s1 = default, s2 = default, s3 = default;
                T* bj = b + j;
                for (int t = 0; t < k; t++, bj += ldb)
                {
                    var at = Vector512.Create(a[t * ks]);
                    s0 = Fma(Vector512.Load(bj), at, s0);
                    s1 = Fma(Vector512.Load(bj + v), at, s1);
                    s2 = Fma(Vector512.Load(bj + 2 * v), at, s2);
                    s3 = Fma(Vector512.Load(bj + 3 * v), at, s3);
                }
                s0.Store(c + j);
                s1.Store(c + j + v);
                s2.Store(c + j + 2 * v);
                s3.Store(c + j + 3 * v);
            }
            for (; j <= cols - v; j += v)
            {
                Vector512<T> s0 = default;
                T* bj = b + j;
                for (int t = 0; t < k; t++, bj += ldb) s0 = Fma(Vector512.Load(bj), Vector512.Create(a[t * ks]), s0);
                s0.Store(c + j);
            }
        }
        for (; j < cols; j++)
        {
            T sum = T.Zero;
            for (int t = 0; t < k; t++) sum = T.FusedMultiplyAdd(b[t * ldb + j], a[t * ks], sum);
            c[j] = sum;
        }
    }
}

/// <summary>
/// dw [out × in] = dyᵀ · x for a small batch and a large dw (AlexNet's and VGG16's fc1: 151 and 411 MB at batch ≤ 16):
/// the product has only N multiply-adds per element, so writing dw is the cost. Each row dw[o, :] = Σ_i dy[i, o]·x[i, :]
/// is fused-multiply-added from i = 0 up (vector lanes and scalar ends alike, so the bits do not depend on the split) and
/// written with non-temporal stores, which skip reading the lines they overwrite; the N rows of x stay in cache. Rows
/// of x a multiple of 128 bytes long are first copied an odd number of cache lines apart: a multiple of 4 KB apart (VGG16's
/// and AlexNet's 4096 and 9216 features), N rows past L1's 8 ways evict each other at every column (4096 → 4096 at batch
/// 16: 27 against 11 ms). Items are fixed ranges of rows.
/// </summary>
internal sealed unsafe class OuterJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Up to this batch; and dw of at least <see cref="MinElements"/> elements (smaller ones stay in cache anyway).</summary>
    public const int MaxBatch = 16;

    public const long MinElements = 1L << 20;

    private T* _dy, _x, _dw;
    private int _n, _inputs, _outputs, _stride, _items;

    public static bool Applies(int n, int inputs, int outputs) =>
        Vector512.IsHardwareAccelerated && n <= MaxBatch && (long)inputs * outputs >= MinElements && inputs >= 4 * Vector512<T>.Count;

    public static void Run(WorkerPool workers, BufferPool pool, T* dy, T* x, int n, int inputs, int outputs, T* dw)
    {
        int lines = (inputs * sizeof(T) + 63) / 64, stride = inputs;
        T[]? copy = null;
        if (n > 1 && inputs * sizeof(T) % 128 == 0)
        {
            stride = (lines + 1) * 64 / sizeof(T);
            copy = pool.Rent<T>(n * stride, clear: false);
        }
        var job = Cache<OuterJob<T>>.Rent();
        try
        {
            fixed (T* pc = copy)
            {
                if (copy is not null)
                {
                    for (int i = 0; i < n; i++) new ReadOnlySpan<T>(x + (long)i * inputs, inputs).CopyTo(new Span<T>(pc + (long)i * stride, inputs));
                }
                job._dy = dy;
                job._x = copy is null ? x : pc;
                job._dw = dw;
                (job._n, job._inputs, job._outputs, job._stride) = (n, inputs, outputs, stride);
                job._items = Math.Min(outputs, 8 * workers.Threads);
                workers.For(job._items, job);
            }
        }
        finally
        {
            job._dy = job._x = job._dw = null;
            Cache<OuterJob<T>>.Return(job);
            if (copy is not null) pool.Return(copy);
        }
    }

    public void Run(int index, int worker)
    {
        int o0 = (int)((long)index * _outputs / _items), o1 = (int)((long)(index + 1) * _outputs / _items);
        int lanes = Vector512<T>.Count;
        Span<T> c = stackalloc T[MaxBatch];
        for (int o = o0; o < o1; o++)
        {
            for (int i = 0; i < _n; i++) c[i] = _dy[(long)i * _outputs + o];
            T* row = _dw + (long)o * _inputs;
            // Scalar up to the first 64-byte boundary, aligned non-temporal vectors, scalar tail.
            int head = (int)(((64 - ((nuint)row & 63)) & 63) / (nuint)sizeof(T));
            if (((nuint)row & (nuint)(sizeof(T) - 1)) != 0) head = _inputs;   // not even element-aligned: all scalar
            head = Math.Min(head, _inputs);
            int j = 0;
            for (; j < head; j++) row[j] = Element(c, j);
            for (; j <= _inputs - lanes; j += lanes)
            {
                var acc = Vector512<T>.Zero;
                for (int i = 0; i < _n; i++) acc = VectorFma.Fma(Vector512.Create(c[i]), Vector512.Load(_x + (long)i * _stride + j), acc);
                acc.StoreAlignedNonTemporal(row + j);
            }
            for (; j < _inputs; j++) row[j] = Element(c, j);
        }
    }

    private T Element(ReadOnlySpan<T> c, int j)
    {
        T acc = T.Zero;
        for (int i = 0; i < _n; i++) acc = T.FusedMultiplyAdd(c[i], _x[(long)i * _stride + j], acc);
        return acc;
    }
}

/// <summary>
/// dx [N × in] = dy [N × out] · W [out × in] for a small batch and a large W: the product is memory-bound on W, which
/// a GEMM would first pack (VGG16's fc1 at batch 2: 411 MB, 29 ms by OpenBLAS against 19 here). Here W is streamed
/// once, row after row, over a band of columns whose N rows of dx stay in L1. Each element is fused-multiply-added over
/// o = 0 up from zero (vector lanes and scalar tail alike), so the bits depend neither on the bands nor on the threads.
/// Items are fixed ranges of whole vectors of columns; the last one takes the scalar tail.
/// </summary>
internal sealed unsafe class StreamJob<T> : IParallelWork where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Up to this batch (<see cref="Linear.DotBatch"/>, as the forward); and W of at least <see cref="MinElements"/> elements.</summary>
    public const int MaxBatch = Linear.DotBatch;

    public const long MinElements = 1L << 20;

    /// <summary>Bytes of dx a band keeps in L1 (N rows × the band's columns).</summary>
    private const int BandBytes = 16 * 1024;

    private T* _dy, _w, _dx;
    private int _n, _inputs, _outputs, _items, _vectors;

    public static bool Applies(int n, int inputs, int outputs) =>
        Vector512.IsHardwareAccelerated && n <= MaxBatch && (long)inputs * outputs >= MinElements && inputs >= Vector512<T>.Count;

    public static void Run(WorkerPool workers, T* dy, T* w, int n, int inputs, int outputs, T* dx)
    {
        var job = Cache<StreamJob<T>>.Rent();
        try
        {
            job._dy = dy;
            job._w = w;
            job._dx = dx;
            (job._n, job._inputs, job._outputs) = (n, inputs, outputs);
            job._vectors = inputs / Vector512<T>.Count;
            job._items = Math.Min(job._vectors, 4 * workers.Threads);
            workers.For(job._items, job);
        }
        finally
        {
            job._dy = job._w = job._dx = null;
            Cache<StreamJob<T>>.Return(job);
        }
    }

    public void Run(int index, int worker)
    {
        int lanes = Vector512<T>.Count;
        int j0 = (int)((long)index * _vectors / _items) * lanes, j1 = (int)((long)(index + 1) * _vectors / _items) * lanes;
        int width = Math.Max(4 * lanes, BandBytes / (_n * sizeof(T)) / lanes * lanes);
        for (int jb = j0; jb < j1; jb += width) Band(jb, Math.Min(j1, jb + width));
        if (index == _items - 1 && j1 < _inputs) Tail(j1);
    }

    // dx[i, j0..j1) for every i, j1 − j0 a multiple of a vector: sums in a packed block (dx's rows lie `in` elements
    // apart, a multiple of 4 KB at VGG16's and AlexNet's widths, where N rows would share a few L1 sets), four rows of W
    // a pass, their products chained in order; then copied out.
    private void Band(int j0, int j1)
    {
        int lanes = Vector512<T>.Count, n = _n, outputs = _outputs, cols = j1 - j0;
        long ld = _inputs;
        Span<T> block = stackalloc T[n * cols];
        Span<T> coefficients = stackalloc T[4 * n];
        block.Clear();
        fixed (T* acc0 = block, c = coefficients)
        {
            int o = 0;
            for (; o + 4 <= outputs; o += 4)
            {
                // dy[i, o..o+3] next to each other (dy's rows, too, lie a multiple of 4 KB apart)
                for (int i = 0; i < n; i++)
                {
                    T* r = _dy + (long)i * outputs + o;
                    (c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]) = (r[0], r[1], r[2], r[3]);
                }
                T* w0 = _w + o * ld + j0, w1 = w0 + ld, w2 = w1 + ld, w3 = w2 + ld;
                for (int j = 0; j < cols; j += lanes)
                {
                    var b0 = Vector512.Load(w0 + j);
                    var b1 = Vector512.Load(w1 + j);
                    var b2 = Vector512.Load(w2 + j);
                    var b3 = Vector512.Load(w3 + j);
                    T* ci = c;
                    T* d = acc0 + j;
                    for (int i = 0; i < n; i++, ci += 4, d += cols)
                    {
                        var acc = Vector512.Load(d);
                        acc = VectorFma.Fma(b0, Vector512.Create(ci[0]), acc);
                        acc = VectorFma.Fma(b1, Vector512.Create(ci[1]), acc);
                        acc = VectorFma.Fma(b2, Vector512.Create(ci[2]), acc);
                        acc = VectorFma.Fma(b3, Vector512.Create(ci[3]), acc);
                        acc.Store(d);
                    }
                }
            }
            for (; o < outputs; o++)
            {
                T* wo = _w + o * ld + j0;
                for (int j = 0; j < cols; j += lanes)
                {
                    var b = Vector512.Load(wo + j);
                    T* dyo = _dy + o;
                    T* d = acc0 + j;
                    for (int i = 0; i < n; i++, dyo += outputs, d += cols) VectorFma.Fma(b, Vector512.Create(dyo[0]), Vector512.Load(d)).Store(d);
                }
            }
        }
        for (int i = 0; i < n; i++) block.Slice(i * cols, cols).CopyTo(new Span<T>(_dx + i * ld + j0, cols));
    }

    // The columns past the last whole vector, one element at a time in the same order.
    private void Tail(int j0)
    {
        for (int i = 0; i < _n; i++)
        for (int j = j0; j < _inputs; j++)
        {
            T acc = T.Zero;
            for (int o = 0; o < _outputs; o++) acc = T.FusedMultiplyAdd(_w[(long)o * _inputs + j], _dy[(long)i * _outputs + o], acc);
            _dx[(long)i * _inputs + j] = acc;
        }
    }
}
