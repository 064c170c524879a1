namespace Lockstep;

/// <summary>How an output size (W − F + 2P)/S + 1 that is not an integer is treated.</summary>
public enum SizeRule
{
    /// <summary>The notes' rule: a non-integer size is an error that shows the arithmetic.</summary>
    Exact,
    /// <summary>Round down, dropping the input's last rows/columns (libtorch's default).</summary>
    Floor,
    /// <summary>Round up (pooling's ceil_mode); a last window that would start in the padding is dropped.</summary>
    Ceil,
}
