namespace Lockstep.Conformance;

/// <summary>How random inputs are drawn.</summary>
public enum InputKind
{
    /// <summary>Uniform in [−1, 1).</summary>
    Generic,
    /// <summary>Many exact ties: ReLU'd small integers, and (shape-aware draws) some constant planes, as max pooling
    /// meets after a ReLU.</summary>
    TieHeavy,
    /// <summary>Away from ReLU's kink: |x| ≥ 0.1; and distinct values, so max pooling has no near-ties.</summary>
    KinkFree,
}

/// <summary>Seeded host data for test inputs, the same on every backend and every run.</summary>
public static class HostData
{
    public static double[] Random(int seed, long count, InputKind kind = InputKind.Generic)
    {
        var rng = new Random(seed);
        var data = new double[count];
        switch (kind)
        {
            case InputKind.Generic:
                for (long i = 0; i < count; i++) data[i] = 2 * rng.NextDouble() - 1;
                break;
            case InputKind.TieHeavy:
                for (long i = 0; i < count; i++) data[i] = Math.Max(0, rng.Next(-3, 4));
                break;
            case InputKind.KinkFree:
                // A shuffled ladder of distinct values 0.1 apart-ish, signs mixed: no ties, no values near 0.
                for (long i = 0; i < count; i++) data[i] = (0.1 + 0.9 * i / Math.Max(1, count)) * (i % 2 == 0 ? 1 : -1);
                rng.Shuffle(data);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
        return data;
    }

    /// <summary>
    /// As <see cref="Random(int, long, InputKind)"/>, aware of the planes of <paramref name="shape"/> (its last two
    /// axes; the last one for a matrix): tie-heavy data then makes about one plane in four constant (all 0, 1 or 2),
    /// the other three ReLU'd integers.
    /// </summary>
    public static double[] Random(int seed, Shape shape, InputKind kind)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var data = Random(seed, shape.Count, kind);
        if (kind != InputKind.TieHeavy || shape.Rank == 0 || data.Length == 0) return data;
        int plane = shape.Rank >= 2 ? shape[shape.Rank - 1] * shape[shape.Rank - 2] : shape[0];
        if (shape.Rank == 2) plane = shape[1];
        if (plane <= 1) return data;
        var rng = new Random(seed ^ 0x5bd1e995);
        for (int start = 0; start + plane <= data.Length; start += plane)
        {
            if (rng.Next(4) == 0) Array.Fill(data, rng.Next(3), start, plane);
        }
        return data;
    }

    /// <summary>Rounds to the precision of <paramref name="dtype"/>, so that float32 and float64 runs see the same numbers.</summary>
    public static double[] RoundTo(double[] data, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(data);
        return dtype == DType.Float32 ? Array.ConvertAll(data, v => (double)(float)v) : data;
    }

    public static int[] Labels(int seed, int count, int classes)
    {
        var rng = new Random(seed);
        var labels = new int[count];
        for (int i = 0; i < count; i++) labels[i] = rng.Next(classes);
        return labels;
    }
}
