package Cocaine;
# What apps use: mark streaming handlers, fail a job with a chosen code.
#
#   package Echo;
#   use Cocaine qw(streaming);
#   sub echo { my ($request) = @_; return ($request) }
#   streaming 'shout';
#   sub shout { my ($request, $response) = @_; ... }

use strict;
use warnings;
use Exporter 'import';

our @EXPORT_OK = qw(streaming error);
our $VERSION = '0.1.0';

# package name -> { handler name -> 1 }
my %STREAMING;

# Marks the named subs of the calling package as streaming handlers.
sub streaming {
    my $package = caller;
    $STREAMING{$package}{$_} = 1 for @_;
    return;
}

sub is_streaming {
    my ($package, $name) = @_;
    return $STREAMING{$package}{$name} ? 1 : 0;
}

# Dies with a Cocaine::Error: the job fails with [6, sid, $code, $message].
sub error {
    my ($code, $message) = @_;
    die Cocaine::Error->new($code, $message);
}

package Cocaine::Error;

use overload '""' => sub { "$_[0]{code} $_[0]{message}" }, fallback => 1;

sub new {
    my ($class, $code, $message) = @_;
    return bless { code => $code, message => defined $message ? "$message" : '' }, $class;
}

sub code    { $_[0]{code} }
sub message { $_[0]{message} }

package Cocaine::Cancelled;

use overload '""' => sub { "job $_[0]{sid} was cancelled" }, fallback => 1;

sub new { bless { sid => $_[1] }, $_[0] }

1;
